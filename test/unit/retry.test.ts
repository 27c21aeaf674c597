import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_RETRY_POLICY, endAttempt, type Job } from '../../pkg/model/index.js';
import { jobAfterAttempt, NO_CAUSES } from '../../pkg/model/index.js';

const base: Job = {
  id: 'j1', name: '', kind: 'shell', command: ['/bin/sh', '-c', 'exit 1'], env: {}, labels: {},
  resources: { cpu: 100, memory: 1, gpuMilli: 0 }, priority: 0, state: 'Running', createdAt: 1,
  attempt: 1, node: 'n1', scheduledAt: 2, startedAt: 3,
};

describe('retry policy', () => {
  it('backs off exponentially with jitter inside [ceiling/2, ceiling]', () => {
    const p = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 1000, maxDelayMs: 8000 };
    expect(backoffDelay(1, p, () => 0)).toBe(500);
    expect(backoffDelay(1, p, () => 1)).toBe(1000);
    expect(backoffDelay(3, p, () => 1)).toBe(4000);
    expect(backoffDelay(10, p, () => 1)).toBe(8000);
  });

  it('requeues a failed attempt while retries remain, and records it', () => {
    const next = endAttempt({ ...base, retries: 2 }, { state: 'Failed', failure: 'exit', exitCode: 1, reason: 'exited with code 1', now: 100 }, DEFAULT_RETRY_POLICY, () => 0);
    expect(next).toMatchObject({ state: 'Pending', failureCount: 1, retryAt: 600, attempt: 1 });
    expect(next.node).toBeUndefined();
    expect(next.history).toEqual([{ attempt: 1, node: 'n1', scheduledAt: 2, startedAt: 3, finishedAt: 100, exitCode: 1, state: 'Failed', reason: 'exited with code 1', failure: 'exit' }]);
    expect(next.reason).toBe('exited with code 1; retry 1 of 2 in 0.5s');
  });

  it('ends Failed with the whole history when retries are spent', () => {
    const next = endAttempt({ ...base, retries: 1, failureCount: 1, history: [{ attempt: 0, finishedAt: 1, state: 'Failed' }] }, { state: 'Failed', failure: 'exit', exitCode: 2, reason: 'exited with code 2', now: 100 });
    expect(next).toMatchObject({ state: 'Failed', exitCode: 2, finishedAt: 100 });
    expect(next.history).toHaveLength(2);
  });

  it('retries node loss under the cluster budget even with no job retries', () => {
    const next = endAttempt(base, { state: 'Failed', failure: 'node-lost', reason: 'node n1 left', now: 100 });
    expect(next).toMatchObject({ state: 'Pending', nodeLostCount: 1 });
    expect(next.retryAt).toBeUndefined();
    expect(endAttempt({ ...base, nodeLostCount: 3 }, { state: 'Failed', failure: 'node-lost', now: 100 }).state).toBe('Failed');
  });

  it('never retries a cancelled job', () => {
    expect(endAttempt({ ...base, retries: 5, cancelRequested: true }, { state: 'Failed', failure: 'exit', now: 1 }).state).toBe('Failed');
    expect(endAttempt({ ...base, retries: 5 }, { state: 'Cancelled', now: 1 }).state).toBe('Cancelled');
  });
});

describe('eviction', () => {
  const reason = 'Reclaimed by queue b';

  it('puts the job back to Pending with the attempt in its history, spending no retry budget and no backoff', () => {
    const job: Job = { ...base, retries: 2, failureCount: 1, nodeLostCount: 1, retryAt: 50, gpuDevices: ['0'] };
    const next = endAttempt(job, { state: 'Pending', failure: 'evicted', reason, exitCode: 143, now: 100 });
    expect(next).toMatchObject({ state: 'Pending', reason, attempt: 1, failureCount: 1, nodeLostCount: 1 });
    expect(next.retryAt).toBeUndefined();
    expect(next.node).toBeUndefined();
    expect(next.gpuDevices).toBeUndefined();
    expect(next.startedAt).toBeUndefined();
    expect(next.history).toEqual([{ attempt: 1, node: 'n1', scheduledAt: 2, startedAt: 3, finishedAt: 100, exitCode: 143, state: 'Pending', reason, failure: 'evicted' }]);
  });

  it('a job evicted again and again never runs out of retries', () => {
    let job: Job = { ...base, retries: 0 };
    for (let i = 0; i < 5; i++) job = { ...endAttempt(job, { state: 'Pending', failure: 'evicted', reason, now: 100 + i }), state: 'Running', attempt: job.attempt + 1 };
    expect(job.history).toHaveLength(5);
    expect(job.failureCount).toBeUndefined();
  });

  it('a cancel wins over an eviction', () => {
    const next = endAttempt({ ...base, cancelRequested: true }, { state: 'Pending', failure: 'evicted', reason, now: 100 });
    expect(next.state).toBe('Cancelled');
  });

  it('the worker records a stopped evicted run as evicted, whatever its exit code; a timeout still fails', () => {
    const evicted = { ...NO_CAUSES, evicted: 'Preempted by job X' };
    for (const exitCode of [0, 137, 143]) {
      expect(jobAfterAttempt(base, evicted, { type: 'exited', exitCode }, DEFAULT_RETRY_POLICY, 100)).toMatchObject({
        state: 'Pending',
        reason: 'Preempted by job X',
        history: [{ state: 'Pending', failure: 'evicted', exitCode }],
      });
    }
    expect(jobAfterAttempt(base, evicted, { type: 'not-started' }, DEFAULT_RETRY_POLICY, 100).state).toBe('Pending');
    expect(jobAfterAttempt({ ...base, cancelRequested: true }, evicted, { type: 'exited', exitCode: 143 }, DEFAULT_RETRY_POLICY, 100).state).toBe('Cancelled');
    const timedOut = jobAfterAttempt({ ...base, timeoutMs: 1000 }, { ...evicted, timeout: true }, { type: 'exited', exitCode: 137 }, DEFAULT_RETRY_POLICY, 100);
    expect(timedOut).toMatchObject({ state: 'Failed', history: [{ failure: 'timeout' }] });
  });
});
