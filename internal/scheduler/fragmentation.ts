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

/** Shapes that need the same devices: they differ only in CPU and memory. */
interface DeviceNeed {
  /** Free milli a device needs to host one of them. */
  perDevice: number;
  devices: number;
  gpuModels?: readonly string[];
  shapes: { cpu: number; memory: number; weight: number }[];
}

const needsByMix = new WeakMap<readonly JobShape[], DeviceNeed[]>();

function deviceNeeds(mix: readonly JobShape[]): DeviceNeed[] {
  let needs = needsByMix.get(mix);
  if (!needs) {
    const byKey = new Map<string, DeviceNeed>();
    for (const shape of mix) {
      const perDevice = Math.min(shape.gpuMilli, MILLI_PER_GPU);
      const devices = gpuDeviceCount(shape.gpuMilli);
      const key = `${perDevice}|${devices}|${shape.gpuModels?.join('|') ?? ''}`;
      let need = byKey.get(key);
      if (!need) {
        need = { perDevice, devices, ...(shape.gpuModels ? { gpuModels: shape.gpuModels } : {}), shapes: [] };
        byKey.set(key, need);
      }
      need.shapes.push({ cpu: shape.cpu, memory: shape.memory, weight: shape.weight });
    }
    needs = [...byKey.values()];
    needsByMix.set(mix, needs);
  }
  return needs;
}

/**
 * The fragmentation of a node against a job mix (the FGD measure, "Beware of
 * Fragmentation", ATC '23): the expected free GPU, in milli-GPU, that the
 * next job drawn from the mix could not use. For one job shape that is all
 * free GPU when the shape does not fit the node's free CPU, memory, models
 * or devices; otherwise the free GPU on devices too small for it (a partly
 * used device, for a whole-GPU job).
 */
export function nodeFragmentation(node: NodeView, mix: readonly JobShape[], free = freeCapacity(node)): number {
  const gpuFree = free.gpuFree;
  let total = 0;
  for (const f of gpuFree) total += f;
  if (total === 0) return 0;
  let frag = 0;
  for (const need of deviceNeeds(mix)) {
    let unusable = 0;
    let usableDevices = 0;
    for (let i = 0; i < gpuFree.length; i++) {
      const allowed = need.gpuModels === undefined || need.gpuModels.includes(node.gpus[i].model);
      if (allowed && gpuFree[i] >= need.perDevice) usableDevices++;
      else unusable += gpuFree[i];
    }
    const devicesFit = usableDevices >= need.devices;
    for (const shape of need.shapes) {
      const fits = devicesFit && shape.cpu <= free.cpu && shape.memory <= free.memory;
      frag += shape.weight * (fits ? unusable : total);
    }
  }
  return frag;
}
