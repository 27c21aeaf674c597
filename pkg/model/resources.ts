/** CPU in millicores, memory in bytes, GPUs as a device count. */
export interface Resources {
  cpu: number;
  memory: number;
  gpu: number;
}

export const ZERO_RESOURCES: Readonly<Resources> = Object.freeze({ cpu: 0, memory: 0, gpu: 0 });

export function addResources(a: Resources, b: Resources): Resources {
  return { cpu: a.cpu + b.cpu, memory: a.memory + b.memory, gpu: a.gpu + b.gpu };
}

export function subtractResources(a: Resources, b: Resources): Resources {
  return { cpu: a.cpu - b.cpu, memory: a.memory - b.memory, gpu: a.gpu - b.gpu };
}

export function fitsWithin(request: Resources, free: Resources): boolean {
  return request.cpu <= free.cpu && request.memory <= free.memory && request.gpu <= free.gpu;
}
