/** One GPU in milli-GPU: a job asking for 250 takes a quarter of one device. */
export const MILLI_PER_GPU = 1000;

/** CPU in millicores, memory in bytes, GPU in milli-GPU (1000 = one whole device). */
export interface Resources {
  cpu: number;
  memory: number;
  gpuMilli: number;
}

/** The dimensions of Resources, for arithmetic that treats them alike. */
export const RESOURCE_DIMENSIONS = ['cpu', 'memory', 'gpuMilli'] as const;
export type ResourceDimension = (typeof RESOURCE_DIMENSIONS)[number];

export const ZERO_RESOURCES: Readonly<Resources> = Object.freeze({ cpu: 0, memory: 0, gpuMilli: 0 });

export function addResources(a: Resources, b: Resources): Resources {
  return { cpu: a.cpu + b.cpu, memory: a.memory + b.memory, gpuMilli: a.gpuMilli + b.gpuMilli };
}

export function subtractResources(a: Resources, b: Resources): Resources {
  return { cpu: a.cpu - b.cpu, memory: a.memory - b.memory, gpuMilli: a.gpuMilli - b.gpuMilli };
}

export function fitsWithin(request: Resources, free: Resources): boolean {
  return request.cpu <= free.cpu && request.memory <= free.memory && request.gpuMilli <= free.gpuMilli;
}

/** The dominant share of an amount: its largest fraction of the capacity over CPU, memory and GPU (DRF). */
export function dominantShare(amount: Resources, capacity: Resources): number {
  let share = 0;
  for (const d of RESOURCE_DIMENSIONS) if (capacity[d] > 0) share = Math.max(share, amount[d] / capacity[d]);
  return share;
}

/**
 * The share of each assigned device a GPU request takes: a fraction of one
 * device below 1000, else whole devices (multi-GPU jobs never share).
 */
export function gpuShareMilli(gpuMilli: number): number {
  return Math.min(gpuMilli, MILLI_PER_GPU);
}

/** How many devices a GPU request occupies. */
export function gpuDeviceCount(gpuMilli: number): number {
  return gpuMilli === 0 ? 0 : Math.max(1, Math.floor(gpuMilli / MILLI_PER_GPU));
}

/** 250 → "0.25", 2000 → "2". */
export function formatGpu(gpuMilli: number): string {
  return String(gpuMilli / MILLI_PER_GPU);
}
