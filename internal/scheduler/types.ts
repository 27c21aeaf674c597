import type { ExecutorKind, GpuDevice, JobKind, Resources } from '../../pkg/model/index.js';
import type { NodePorts } from './ports.js';

/** A node as the scheduler sees it: capacity and what is already claimed. */
export interface NodeView {
  id: string;
  capacity: Resources;
  allocated: Resources;
  gpus: GpuDevice[];
  /** Free milli-GPU of each device, in the order of `gpus`. */
  gpuFree: number[];
  labels: Record<string, string>;
  executors: ExecutorKind[];
  /** The ports gang replicas get here and those held (ports.ts); no policy scores them. */
  ports: NodePorts;
  /** Bumped by every allocation and release, so scorers may cache per node state. */
  version: number;
}

/** What a job needs, independent of how it is stored. */
export interface JobRequest {
  id: string;
  kind: JobKind;
  resources: Resources;
  /** Allowed GPU models; any when absent. */
  gpuModels?: readonly string[];
  /** Labels a node must carry. */
  nodeSelector?: Readonly<Record<string, string>>;
}

/** Why a node cannot take a job; every rejected node is counted under one. */
export type RejectReason = 'executor' | 'selector' | 'gpuModel' | 'cpu' | 'memory' | 'gpu';

export interface PlacementChoice {
  nodeId: string;
  gpuDevices: string[];
  score: number;
}

export interface NoPlacement {
  rejected: Partial<Record<RejectReason, number>>;
  nodesConsidered: number;
}
