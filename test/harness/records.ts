import type { NodeInfo } from '../../pkg/model/index.js';

/** A valid node record for tests that only need the key to exist (records are validated on every read). */
export function nodeRecord(id: string, patch: Partial<NodeInfo> = {}): NodeInfo {
  return {
    id,
    hostname: id,
    capacity: { cpu: 1000, memory: 2 ** 30, gpuMilli: 0 },
    gpus: [],
    labels: {},
    executors: ['docker'],
    registeredAt: 0,
    version: 'test',
    ...patch,
  };
}
