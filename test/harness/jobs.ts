import { newJobId, type Job } from '../../pkg/model/index.js';

/** A small Pending shell job as `titan submit --shell true` would store it, with overrides. */
export function shellJob(overrides: Partial<Job> = {}): Job {
  return {
    id: newJobId(),
    name: 'j',
    kind: 'shell',
    command: ['true'],
    env: {},
    resources: { cpu: 100, memory: 2 ** 20, gpuMilli: 0 },
    priority: 0,
    labels: {},
    state: 'Pending',
    createdAt: Date.now(),
    attempt: 0,
    ...overrides,
  };
}
