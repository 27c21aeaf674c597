import type { Resources } from './resources.js';

export interface GpuDevice {
  index: number;
  uuid: string;
  model: string;
  /** Device memory in bytes (0 when unknown). */
  memory: number;
}

export type ExecutorKind = 'docker' | 'shell';

/** What a worker says about itself under its lease. */
export interface NodeInfo {
  id: string;
  hostname: string;
  capacity: Resources;
  gpus: GpuDevice[];
  labels: Record<string, string>;
  /** Which job kinds this node can run. */
  executors: ExecutorKind[];
  registeredAt: number;
  version: string;
  /**
   * Which worker holds the registration: kept in its state dir, so a restart
   * of the same worker is the same instance and takes its registration over,
   * while a second worker with this node id is refused. Absent from older workers.
   */
  instance?: string;
  /**
   * Where gang peers reach this node's jobs (`titan-worker --advertise-addr`,
   * an IP or a hostname; default the hostname). Absent from older workers:
   * the hostname is used then (peerAddressOf).
   */
  advertiseAddr?: string;
  /**
   * The ports gang replicas get here (`titan-worker --port-range`), each held
   * by one attempt at a time. Absent from older workers: DEFAULT_PORT_RANGE,
   * the range a worker offers by default (portRangeOf).
   */
  portRange?: PortRange;
}

/** A range of TCP ports, both ends included: 1 <= first <= last <= 65535. */
export interface PortRange {
  first: number;
  last: number;
}

/**
 * What a worker offers without --port-range, and what a node record written
 * before ports were reserved is taken to offer. It starts at PyTorch's
 * customary port (where an older master put rank r: 29500 + r) and stays
 * below Linux's ephemeral ports (32768 and up), which the kernel hands out
 * to outgoing connections.
 */
export const DEFAULT_PORT_RANGE: Readonly<PortRange> = Object.freeze({ first: 29500, last: 29999 });

/** The ports a node offers gang replicas. */
export function portRangeOf(node: Pick<NodeInfo, 'portRange'>): PortRange {
  return node.portRange ?? DEFAULT_PORT_RANGE;
}

/** Where gang peers reach a node's jobs: its advertised address, else its hostname, else its id. */
export function peerAddressOf(node: Pick<NodeInfo, 'id' | 'hostname' | 'advertiseAddr'>): string {
  return node.advertiseAddr || node.hostname || node.id;
}

/** A GPU's id as passed to Docker and CUDA: its UUID when known, else its index. */
export function gpuDeviceId(gpu: GpuDevice): string {
  return gpu.uuid || String(gpu.index);
}
