import type { JobRequest, NodeView, RejectReason } from './types.js';

/** A feasibility check: undefined when the node can take the job now, else why not. */
export type FeasibilityCheck = (job: JobRequest, node: NodeView) => RejectReason | undefined;

const executorCheck: FeasibilityCheck = (job, node) => (node.executors.includes(job.kind) ? undefined : 'executor');

const cpuCheck: FeasibilityCheck = (job, node) =>
  node.allocated.cpu + job.resources.cpu <= node.capacity.cpu ? undefined : 'cpu';

const memoryCheck: FeasibilityCheck = (job, node) =>
  node.allocated.memory + job.resources.memory <= node.capacity.memory ? undefined : 'memory';

const gpuCheck: FeasibilityCheck = (job, node) =>
  job.resources.gpu === 0 || freeGpuCount(node) >= job.resources.gpu ? undefined : 'gpu';

/** Checked in this order; the first failing check names the rejection. */
export const FEASIBILITY_CHECKS: readonly FeasibilityCheck[] = [executorCheck, cpuCheck, memoryCheck, gpuCheck];

export function firstRejection(job: JobRequest, node: NodeView): RejectReason | undefined {
  for (const check of FEASIBILITY_CHECKS) {
    const reason = check(job, node);
    if (reason) return reason;
  }
  return undefined;
}

export function freeGpuCount(node: NodeView): number {
  return node.gpus.length - node.usedGpus.size;
}

/** Whether the job could run on the node if the node were empty. */
export function fitsEmptyNode(job: JobRequest, node: NodeView): boolean {
  const r = job.resources;
  return (
    node.executors.includes(job.kind) &&
    r.cpu <= node.capacity.cpu &&
    r.memory <= node.capacity.memory &&
    r.gpu <= node.gpus.length
  );
}
