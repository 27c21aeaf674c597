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
}

/** A GPU's id as passed to Docker and CUDA: its UUID when known, else its index. */
export function gpuDeviceId(gpu: GpuDevice): string {
  return gpu.uuid || String(gpu.index);
}
