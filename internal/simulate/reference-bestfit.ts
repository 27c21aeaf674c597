import type { JobRequest, NodeView, Policy } from '../scheduler/index.js';
import { taskTypeOf, type TaskType } from './typical-tasks.js';

export const BESTFIT_DESCRIPTION =
  "reference: the FGD artefact's BestFit score (least CPU and GPU left after placing, each ÷ its largest node spec, scores 0-100 in whole points)";

/** The artefact's normalizers: the largest node's CPU (millicores) and GPU (milli-GPU). */
const MAX_SPEC_CPU = 128_000;
const MAX_SPEC_GPU = 8_000;

/**
 * The artefact's BestFit score: 100 × (1 − the mean of the node's CPU and GPU
 * left after placing, each ÷ its normalizer), rounded down. Its min-max
 * normalization over the scanned nodes keeps the order and the ties (scores
 * span at most 100 points), so the raw score ranks the same. A share goes to
 * the fullest device it fits on, whole GPUs to the lowest-index free ones:
 * the default device choice.
 */
export function bestFitScore(job: JobRequest, node: NodeView, task: TaskType = taskTypeOf(job)): number {
  let gpuLeft = 0;
  for (const left of node.gpuFree) gpuLeft += left;
  const cpuLeft = node.capacity.cpu - node.allocated.cpu;
  let left = 0;
  left += ((cpuLeft - task.cpu) / MAX_SPEC_CPU) * 0.5;
  left += ((gpuLeft - task.milli * task.devices) / MAX_SPEC_GPU) * 0.5;
  return Math.trunc((1 - left) * 100);
}

export function bestFitPolicy(): Policy {
  // A scan scores one job against every node: its task type is made once.
  let lastJob: JobRequest | undefined;
  let task: TaskType | undefined;
  const score = (job: JobRequest, node: NodeView): number => {
    if (job !== lastJob || task === undefined) {
      lastJob = job;
      task = taskTypeOf(job);
    }
    return bestFitScore(job, node, task);
  };
  return { name: 'bestfit', description: BESTFIT_DESCRIPTION, score, isMonotone: () => false, observe: () => {} };
}
