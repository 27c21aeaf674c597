import { describe, expect, it } from 'vitest';
import { applyOutcome, finalOutcome } from '../../internal/worker/outcome.js';
import type { Job } from '../../pkg/model/index.js';

const job: Job = {
  id: 'j1', name: '', kind: 'shell', command: ['true'], env: {}, labels: {}, priority: 0,
  resources: { cpu: 100, memory: 1, gpu: 0 }, state: 'Running', createdAt: 1, attempt: 1, reason: 'old',
};
const none = { cancel: false, worker: false };

describe('finalOutcome', () => {
  it('maps exits to states', () => {
    expect(finalOutcome(job, none, { exitCode: 0 })).toEqual({ state: 'Succeeded', exitCode: 0 });
    expect(finalOutcome(job, none, { exitCode: 3 })).toEqual({ state: 'Failed', reason: 'exited with code 3', exitCode: 3 });
    expect(finalOutcome(job, none, { exitCode: 137, error: 'oom' })).toEqual({ state: 'Failed', reason: 'oom', exitCode: 137 });
    expect(finalOutcome(job, none, { startError: 'image pull failed: x' })).toEqual({ state: 'Failed', reason: 'image pull failed: x' });
  });

  it('a cancel wins; a worker stop fails what did not succeed', () => {
    expect(finalOutcome(job, { cancel: true, worker: false }, { exitCode: 143 })).toEqual({ state: 'Cancelled', reason: 'cancelled by user', exitCode: 143 });
    expect(finalOutcome({ ...job, cancelRequested: true }, none, { exitCode: 137 }).state).toBe('Cancelled');
    expect(finalOutcome({ ...job, cancelRequested: true }, none, { exitCode: 0 }).state).toBe('Succeeded');
    expect(finalOutcome(job, { cancel: false, worker: true }, { exitCode: 143 })).toEqual({ state: 'Failed', reason: 'worker stopped', exitCode: 143 });
    expect(finalOutcome(job, { cancel: false, worker: true }, { exitCode: 0 }).state).toBe('Succeeded');
  });

  it('applyOutcome replaces reason and exit code', () => {
    const next = applyOutcome(job, { state: 'Succeeded', exitCode: 0 }, 42);
    expect(next).toMatchObject({ state: 'Succeeded', exitCode: 0, finishedAt: 42 });
    expect('reason' in next).toBe(false);
  });
});
