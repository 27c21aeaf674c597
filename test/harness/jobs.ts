import { newJobId, type Job } from '../../pkg/model/index.js';

/** A small Pending shell job as `titan submit --shell` would store it, with overrides. */
export function makeJob(overrides: Partial<Job> = {}): Job {
  return {
    id: newJobId(),
    name: 'test',
    kind: 'shell',
    command: ['/bin/sh', '-c', 'echo hi'],
    env: {},
    resources: { cpu: 100, memory: 64 * 2 ** 20, gpuMilli: 0 },
    priority: 0,
    labels: {},
    state: 'Pending',
    createdAt: Date.now(),
    attempt: 0,
    ...overrides,
  };
}
