import { MILLI_PER_GPU, type ExecutorKind, type GpuDevice, type Resources } from '../../pkg/model/index.js';
import type { NodeView } from './types.js';

export interface NodeDescription {
  id: string;
  capacity: Resources;
  gpus: GpuDevice[];
  labels: Record<string, string>;
  executors: ExecutorKind[];
}

/** An empty node: nothing allocated, every device wholly free. */
export function newNodeView(node: NodeDescription): NodeView {
  return {
    id: node.id,
    // GPU capacity is what the devices add up to, whatever the node claimed.
    capacity: { cpu: node.capacity.cpu, memory: node.capacity.memory, gpuMilli: node.gpus.length * MILLI_PER_GPU },
    allocated: { cpu: 0, memory: 0, gpuMilli: 0 },
    gpus: node.gpus,
    gpuFree: node.gpus.map(() => MILLI_PER_GPU),
    labels: node.labels,
    executors: node.executors,
    version: 0,
  };
}
