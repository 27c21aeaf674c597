import { gpuDeviceId } from '../../pkg/model/index.js';
import type { Resources } from '../../pkg/model/index.js';
import type { JobRequest, NodeView } from './types.js';

/** The free devices a job gets on a node: lowest index first, so placements are predictable. */
export function chooseGpuDevices(job: JobRequest, node: NodeView): string[] {
  if (job.resources.gpu === 0) return [];
  const chosen: string[] = [];
  for (const gpu of node.gpus) {
    const id = gpuDeviceId(gpu);
    if (!node.usedGpus.has(id)) chosen.push(id);
    if (chosen.length === job.resources.gpu) break;
  }
  return chosen;
}

export function allocate(node: NodeView, resources: Resources, gpuDevices: readonly string[]): void {
  node.allocated.cpu += resources.cpu;
  node.allocated.memory += resources.memory;
  node.allocated.gpu += resources.gpu;
  for (const id of gpuDevices) node.usedGpus.add(id);
}

export function release(node: NodeView, resources: Resources, gpuDevices: readonly string[]): void {
  node.allocated.cpu -= resources.cpu;
  node.allocated.memory -= resources.memory;
  node.allocated.gpu -= resources.gpu;
  for (const id of gpuDevices) node.usedGpus.delete(id);
}
