import { gpuDeviceCount, MILLI_PER_GPU } from '../../pkg/model/index.js';
import type { NodeView } from './types.js';
import type { JobShape } from './workload-mix.js';

/** A node's free capacity, possibly after a hypothetical placement. */
export interface FreeCapacity {
  cpu: number;
  memory: number;
  /** Free milli-GPU per device, in the order of node.gpus. */
  gpuFree: readonly number[];
}

export function freeCapacity(node: NodeView): FreeCapacity {
  return {
    cpu: node.capacity.cpu - node.allocated.cpu,
    memory: node.capacity.memory - node.allocated.memory,
    gpuFree: node.gpuFree,
  };
}

/**
 * Free GPU (milli) on a node that jobs of one shape could not use: all of it
 * when the shape does not fit the node's free CPU, memory, model or devices;
 * otherwise the devices too small for it (a partly used device for a
 * whole-GPU job; a device with less than its share for a fractional one).
 */
function unusableGpuMilli(shape: JobShape, node: NodeView, free: FreeCapacity): number {
  const gpuFree = free.gpuFree;
  let total = 0;
  for (const f of gpuFree) total += f;
  if (total === 0) return 0;
  if (shape.cpu > free.cpu || shape.memory > free.memory) return total;
  const fractional = shape.gpuMilli < MILLI_PER_GPU;
  const need = fractional ? shape.gpuMilli : MILLI_PER_GPU;
  let unusable = 0;
  let usableDevices = 0;
  for (let i = 0; i < gpuFree.length; i++) {
    const allowed = shape.gpuModels === undefined || shape.gpuModels.includes(node.gpus[i].model);
    if (allowed && gpuFree[i] >= need) usableDevices++;
    else unusable += gpuFree[i];
  }
  const devicesNeeded = fractional ? 1 : gpuDeviceCount(shape.gpuMilli);
  return usableDevices >= devicesNeeded ? unusable : total;
}

/**
 * The fragmentation of a node against a job mix (the FGD measure, "Beware of
 * Fragmentation", ATC '23): expected free GPU that the next job, drawn from
 * the mix, could not use. In milli-GPU.
 */
export function nodeFragmentation(node: NodeView, mix: readonly JobShape[], free = freeCapacity(node)): number {
  let frag = 0;
  for (const shape of mix) frag += shape.weight * unusableGpuMilli(shape, node, free);
  return frag;
}
