import { describe, expect, it } from 'vitest';
import {
  attemptOutcome,
  CONTAINER_REMOVED_REASON,
  FENCED_REASON,
  formatDuration,
  jobAfterAttempt,
  NO_CAUSES,
  timeoutReason,
  type StopCauses,
} from '../../pkg/model/index.js';
import { DEFAULT_RETRY_POLICY, type Job } from '../../pkg/model/index.js';

const job: Job = {
  id: 'j1', name: '', kind: 'shell', command: ['true'], env: {}, labels: {}, priority: 0,
  resources: { cpu: 100, memory: 1, gpuMilli: 0 }, state: 'Running', createdAt: 1, attempt: 1, node: 'n1', startedAt: 5,
};
const none = NO_CAUSES;
const with_ = (c: Partial<StopCauses>): StopCauses => ({ ...NO_CAUSES, ...c });
const exited = (exitCode: number) => ({ type: 'exited' as const, exitCode });

describe('attemptOutcome', () => {
  it('maps exits and start failures', () => {
    expect(attemptOutcome(job, none, exited(0), 9)).toEqual({ state: 'Succeeded', exitCode: 0, now: 9 });
    expect(attemptOutcome(job, none, exited(3), 9)).toEqual({ state: 'Failed', failure: 'exit', reason: 'exited with code 3', exitCode: 3, now: 9 });
    expect(attemptOutcome(job, none, { type: 'exited', exitCode: 137, detail: 'oom' }, 9)).toMatchObject({ failure: 'exit', reason: 'oom', exitCode: 137 });
    expect(attemptOutcome(job, none, { type: 'start-failed', reason: 'image pull failed: x' }, 9)).toEqual({
      state: 'Failed', failure: 'start-failed', reason: 'image pull failed: x', now: 9,
    });
    expect(attemptOutcome(job, none, { type: 'lost', reason: CONTAINER_REMOVED_REASON }, 9)).toEqual({
      state: 'Failed', failure: 'lost-container', reason: CONTAINER_REMOVED_REASON, now: 9,
    });
  });

  it('a cancel wins; the worker\'s own stops say why', () => {
    expect(attemptOutcome(job, with_({ cancel: true }), exited(143), 9)).toMatchObject({ state: 'Cancelled', reason: 'cancelled by user', exitCode: 143 });
    expect(attemptOutcome({ ...job, cancelRequested: true }, none, exited(137), 9).state).toBe('Cancelled');
    expect(attemptOutcome({ ...job, cancelRequested: true }, none, exited(0), 9).state).toBe('Succeeded');
    expect(attemptOutcome({ ...job, timeoutMs: 1500 }, with_({ timeout: true }), exited(137), 9)).toMatchObject({
      failure: 'timeout', reason: 'Timeout: ran longer than 1.5s', exitCode: 137,
    });
    expect(attemptOutcome(job, with_({ fenced: true }), exited(137), 9)).toMatchObject({ failure: 'node-lost', reason: FENCED_REASON });
    expect(attemptOutcome(job, with_({ worker: true }), exited(143), 9)).toMatchObject({ failure: 'node-lost', reason: 'worker stopped' });
    expect(attemptOutcome(job, with_({ worker: true }), exited(0), 9).state).toBe('Succeeded');
  });
});

describe('jobAfterAttempt', () => {
  it('retries a failure under the job\'s retries with backoff, then fails', () => {
    const retried = jobAfterAttempt({ ...job, retries: 1, reason: 'old' }, none, exited(2), DEFAULT_RETRY_POLICY, 1000);
    expect(retried).toMatchObject({ state: 'Pending', failureCount: 1, attempt: 1 });
    expect(retried.retryAt).toBeGreaterThanOrEqual(1500);
    expect(retried.reason).toMatch(/^exited with code 2; retry 1 of 1 in \d\.\ds$/);
    expect(retried.node).toBeUndefined();
    expect(retried.history).toEqual([{ attempt: 1, node: 'n1', startedAt: 5, finishedAt: 1000, exitCode: 2, state: 'Failed', reason: 'exited with code 2', failure: 'exit' }]);
    const failed = jobAfterAttempt({ ...retried, state: 'Running', attempt: 2 }, none, exited(2), DEFAULT_RETRY_POLICY, 2000);
    expect(failed).toMatchObject({ state: 'Failed', exitCode: 2, reason: 'exited with code 2' });
    expect(failed.history).toHaveLength(2);
  });

  it('requeues a fenced run under the node-lost budget', () => {
    const next = jobAfterAttempt(job, with_({ fenced: true }), exited(137), { ...DEFAULT_RETRY_POLICY, nodeLostRetries: 1 }, 7);
    expect(next).toMatchObject({ state: 'Pending', nodeLostCount: 1 });
    expect(next.reason).toBe(`NodeLost: ${FENCED_REASON}; requeued (node-lost retry 1 of 1)`);
  });

  it('drops the running reason and exit code of a success', () => {
    const next = jobAfterAttempt({ ...job, reason: 'cancel requested; stopping', exitCode: 9 }, none, exited(0), DEFAULT_RETRY_POLICY, 42);
    expect(next).toMatchObject({ state: 'Succeeded', exitCode: 0, finishedAt: 42 });
    expect('reason' in next).toBe(false);
  });
});

describe('timeout reasons', () => {
  it('formats durations as written', () => {
    expect(formatDuration(500)).toBe('500ms');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(2000)).toBe('2s');
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(timeoutReason(60_000)).toBe('Timeout: ran longer than 1m');
  });
});
