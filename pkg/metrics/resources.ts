import { MILLI_PER_GPU, type Resources } from '../model/resources.js';

/** The `resource` label of Titan's metrics, and the unit each is given in. */
export type MetricResource = 'cpu' | 'memory' | 'gpu';

/**
 * Resources as metrics carry them: `cpu` in cores, `memory` in bytes, `gpu`
 * in devices (a share of one device is a fraction). One place, so master
 * and worker metrics use the same units.
 */
export function metricResources(r: Resources): readonly (readonly [MetricResource, number])[] {
  return [
    ['cpu', r.cpu / 1000],
    ['memory', r.memory],
    ['gpu', r.gpuMilli / MILLI_PER_GPU],
  ];
}
