import { gpuDeviceCount, gpuDeviceId, gpuShareMilli, MILLI_PER_GPU } from '../../pkg/model/index.js';
import type { Resources } from '../../pkg/model/index.js';
import { holdPort, releasePort } from './ports.js';
import type { JobRequest, NodeView } from './types.js';

export function gpuModelAllowed(job: JobRequest, model: string): boolean {
  return job.gpuModels === undefined || job.gpuModels.includes(model);
}

/**
 * The devices (indexes into node.gpus) a job gets on a node, or undefined if
 * they are not free. A share of one GPU goes to the fullest device it fits
 * on (best fit keeps whole devices free for whole-GPU jobs); whole GPUs are
 * the lowest-index wholly free devices, so placements are predictable.
 */
export function chooseGpuIndexes(job: JobRequest, node: NodeView, gpuFree: readonly number[] = node.gpuFree): number[] | undefined {
  const milli = job.resources.gpuMilli;
  if (milli === 0) return [];
  if (milli < MILLI_PER_GPU) {
    let best = -1;
    for (let i = 0; i < gpuFree.length; i++) {
      if (gpuFree[i] >= milli && gpuModelAllowed(job, node.gpus[i].model) && (best < 0 || gpuFree[i] < gpuFree[best])) best = i;
    }
    return best < 0 ? undefined : [best];
  }
  const wanted = gpuDeviceCount(milli);
  const chosen: number[] = [];
  for (let i = 0; i < gpuFree.length && chosen.length < wanted; i++) {
    if (gpuFree[i] === MILLI_PER_GPU && gpuModelAllowed(job, node.gpus[i].model)) chosen.push(i);
  }
  return chosen.length === wanted ? chosen : undefined;
}

/**
 * Whether chooseGpuIndexes would find devices, without building them: the
 * feasibility check runs for every node a scan visits.
 */
export function gpusAvailable(job: JobRequest, node: NodeView): boolean {
  const milli = job.resources.gpuMilli;
  if (milli === 0) return true;
  const gpuFree = node.gpuFree;
  if (milli < MILLI_PER_GPU) {
    for (let i = 0; i < gpuFree.length; i++) if (gpuFree[i] >= milli && gpuModelAllowed(job, node.gpus[i].model)) return true;
    return false;
  }
  let wanted = gpuDeviceCount(milli);
  for (let i = 0; i < gpuFree.length; i++) {
    if (gpuFree[i] === MILLI_PER_GPU && gpuModelAllowed(job, node.gpus[i].model) && --wanted === 0) return true;
  }
  return false;
}

/** The device ids (as passed to Docker and CUDA) a job gets on a node; empty if none fit. */
export function chooseGpuDevices(job: JobRequest, node: NodeView): string[] {
  return (chooseGpuIndexes(job, node) ?? []).map((i) => gpuDeviceId(node.gpus[i]));
}

function applyToDevices(node: NodeView, gpuMilli: number, gpuDevices: readonly string[], sign: 1 | -1): void {
  const share = gpuShareMilli(gpuMilli);
  for (const id of gpuDevices) {
    // A device the node no longer reports (it re-registered with other GPUs) holds nothing.
    const i = node.gpus.findIndex((g) => gpuDeviceId(g) === id);
    if (i >= 0) node.gpuFree[i] -= sign * share;
  }
}

/** Takes what a job holds from the node: resources, devices, and a gang replica's port. */
export function allocate(node: NodeView, resources: Resources, gpuDevices: readonly string[], port?: number): void {
  node.allocated.cpu += resources.cpu;
  node.allocated.memory += resources.memory;
  node.allocated.gpuMilli += resources.gpuMilli;
  applyToDevices(node, resources.gpuMilli, gpuDevices, 1);
  if (port !== undefined) holdPort(node.ports, port);
  node.version++;
}

export function release(node: NodeView, resources: Resources, gpuDevices: readonly string[], port?: number): void {
  node.allocated.cpu -= resources.cpu;
  node.allocated.memory -= resources.memory;
  node.allocated.gpuMilli -= resources.gpuMilli;
  applyToDevices(node, resources.gpuMilli, gpuDevices, -1);
  if (port !== undefined) releasePort(node.ports, port);
  node.version++;
}
