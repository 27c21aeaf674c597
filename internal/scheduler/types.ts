import type { ExecutorKind, GpuDevice, JobKind, Resources } from '../../pkg/model/index.js';

/** A node as the scheduler sees it: capacity and what is already claimed. */
export interface NodeView {
  id: string;
  capacity: Resources;
  allocated: Resources;
  gpus: GpuDevice[];
  /** Device ids (see gpuDeviceId) held by some job. */
  usedGpus: Set<string>;
  labels: Record<string, string>;
  executors: ExecutorKind[];
}

/** What a job needs, independent of how it is stored. */
export interface JobRequest {
  id: string;
  kind: JobKind;
  resources: Resources;
}

/** Why a node cannot take a job; every rejected node is counted under one. */
export type RejectReason = 'executor' | 'cpu' | 'memory' | 'gpu';

export interface PlacementChoice {
  nodeId: string;
  gpuDevices: string[];
  score: number;
}

export interface NoPlacement {
  rejected: Partial<Record<RejectReason, number>>;
  nodesConsidered: number;
}
