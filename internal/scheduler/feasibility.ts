import { gpuModelAllowed, gpusAvailable } from './allocation.js';
import type { JobRequest, NodeView, RejectReason } from './types.js';

/** A feasibility check: undefined when the node can take the job now, else why not. */
export type FeasibilityCheck = (job: JobRequest, node: NodeView) => RejectReason | undefined;

const executorCheck: FeasibilityCheck = (job, node) => (node.executors.includes(job.kind) ? undefined : 'executor');

export function matchesSelector(job: JobRequest, node: NodeView): boolean {
  const selector = job.nodeSelector;
  if (!selector) return true;
  for (const key in selector) if (node.labels[key] !== selector[key]) return false;
  return true;
}

const selectorCheck: FeasibilityCheck = (job, node) => (matchesSelector(job, node) ? undefined : 'selector');

/** The node has a GPU of an allowed model (only GPU jobs care). */
export function hasAllowedModel(job: JobRequest, node: NodeView): boolean {
  return job.gpuModels === undefined || job.resources.gpuMilli === 0 || node.gpus.some((g) => gpuModelAllowed(job, g.model));
}

const gpuModelCheck: FeasibilityCheck = (job, node) => (hasAllowedModel(job, node) ? undefined : 'gpuModel');

const cpuCheck: FeasibilityCheck = (job, node) =>
  node.allocated.cpu + job.resources.cpu <= node.capacity.cpu ? undefined : 'cpu';

const memoryCheck: FeasibilityCheck = (job, node) =>
  node.allocated.memory + job.resources.memory <= node.capacity.memory ? undefined : 'memory';

const gpuCheck: FeasibilityCheck = (job, node) => (gpusAvailable(job, node) ? undefined : 'gpu');

/** Checked in this order; the first failing check names the rejection. */
export const FEASIBILITY_CHECKS: readonly FeasibilityCheck[] = [
  executorCheck,
  selectorCheck,
  gpuModelCheck,
  cpuCheck,
  memoryCheck,
  gpuCheck,
];

export function firstRejection(job: JobRequest, node: NodeView): RejectReason | undefined {
  for (const check of FEASIBILITY_CHECKS) {
    const reason = check(job, node);
    if (reason) return reason;
  }
  return undefined;
}

/**
 * Whether the node can take the job now: exactly `firstRejection(job, node)
 * === undefined`, the cheap checks first. A scan asks this of every node it
 * visits and needs the reasons only when no node fits.
 */
export function fitsNow(job: JobRequest, node: NodeView): boolean {
  const r = job.resources;
  return (
    node.allocated.cpu + r.cpu <= node.capacity.cpu &&
    node.allocated.memory + r.memory <= node.capacity.memory &&
    node.executors.includes(job.kind) &&
    matchesSelector(job, node) &&
    hasAllowedModel(job, node) &&
    gpusAvailable(job, node)
  );
}

/** Free GPU on a node, in milli-GPU. */
export function freeGpuMilli(node: NodeView): number {
  let free = 0;
  for (const f of node.gpuFree) free += f;
  return free;
}

/** Whether the job could run on the node if the node were empty. */
export function fitsEmptyNode(job: JobRequest, node: NodeView): boolean {
  const r = job.resources;
  let allowedDevices = 0;
  for (const g of node.gpus) if (gpuModelAllowed(job, g.model)) allowedDevices++;
  return (
    node.executors.includes(job.kind) &&
    matchesSelector(job, node) &&
    r.cpu <= node.capacity.cpu &&
    r.memory <= node.capacity.memory &&
    r.gpuMilli <= allowedDevices * 1000
  );
}
