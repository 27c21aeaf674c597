import type { Resources } from '../../pkg/model/index.js';
import type { JobRequest, NodeView } from './types.js';

/** A scorer ranks a feasible node for a job; higher is better. Pure. */
export type Scorer = (job: JobRequest, node: NodeView) => number;

/**
 * Mean utilisation of the node's dimensions after placing the job, in [0, 1].
 * Dimensions the node does not have (GPUs on a CPU node) do not count.
 */
export function utilizationAfter(request: Resources, node: NodeView): number {
  let sum = (node.allocated.cpu + request.cpu) / node.capacity.cpu;
  sum += (node.allocated.memory + request.memory) / node.capacity.memory;
  let dims = 2;
  if (node.capacity.gpuMilli > 0) {
    sum += (node.allocated.gpuMilli + request.gpuMilli) / node.capacity.gpuMilli;
    dims++;
  }
  return sum / dims;
}

/** Most-allocated: fill nodes up so large nodes stay free for large jobs. */
export const binpackScore: Scorer = (job, node) => utilizationAfter(job.resources, node);

/** Least-allocated: spread load evenly. */
export const spreadScore: Scorer = (job, node) => 1 - utilizationAfter(job.resources, node);

/**
 * A job that needs no GPU should not take CPU or memory on a GPU node when a
 * CPU-only node can run it: that strands the GPUs.
 */
export const gpuAvoidanceScore: Scorer = (job, node) => (job.resources.gpuMilli === 0 && node.gpus.length > 0 ? -0.5 : 0);
