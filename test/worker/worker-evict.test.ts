import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { records } from '../../pkg/store/index.js';
import type { Assignment, Job } from '../../pkg/model/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import {
  assignmentOf,
  placeJobs,
  readLogs,
  startTestWorker,
  submitAndPlace,
  submitJob,
  waitFor,
  waitForState,
  type TestWorker,
} from './helpers.js';

const FINAL = ['Succeeded', 'Failed', 'Cancelled'] as const;

/**
 * Attempt 1 traps SIGTERM (to show it came), says so and exits; a later
 * attempt just finishes, so an evicted job can be seen to complete.
 */
const EVICTABLE = `if [ "$TITAN_ATTEMPT" = 1 ]; then trap 'echo got TERM; exit 143' TERM; echo ready; sleep 30 & wait; fi; echo "finished attempt $TITAN_ATTEMPT"`;

describe('worker: eviction (reclaim, preemption)', () => {
  let etcd: EtcdServer;
  let tw: TestWorker | undefined;

  beforeAll(async () => {
    etcd = await startEtcd({ name: 'worker-evict' });
  });
  afterEach(async () => {
    await tw?.stop();
    tw = undefined;
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  const start = async (): Promise<TestWorker> => {
    tw = await startTestWorker(etcd.endpoints, { docker: 'off' });
    return tw;
  };

  const ready = (tw: TestWorker, id: string): Promise<true> =>
    waitFor('the job to be ready', async () => ((await readLogs(tw.store, id)).stdout.includes('ready') ? true : undefined));

  it('stops an evicted run with SIGTERM and puts the job back to Pending, history recorded, no retry spent', async () => {
    const t = await start();
    const { store, worker } = t;
    const id = await submitAndPlace(store, worker.nodeId, { shell: EVICTABLE }, [], { retries: 2 });
    await waitForState(store, id, ['Running']);
    await ready(t, id);
    const reason = 'Reclaimed by queue b';
    const result = await store.evictJobs([{ nodeId: worker.nodeId, jobId: id, reason, attempt: 1 }], 5000);
    expect(result).toMatchObject({ succeeded: true, evicted: [id], skipped: [] });

    const job = await waitForState(store, id, ['Pending', ...FINAL], 10_000);
    expect(job).toMatchObject({ state: 'Pending', reason, attempt: 1 });
    expect(job.failureCount).toBeUndefined();
    expect(job.nodeLostCount).toBeUndefined();
    expect(job.retryAt).toBeUndefined();
    expect(job.node).toBeUndefined();
    expect(job.history).toEqual([
      expect.objectContaining({ attempt: 1, node: worker.nodeId, state: 'Pending', failure: 'evicted', reason, exitCode: 143 }),
    ]);
    // SIGTERM reached the job (its trap ran) and the attempt's log was kept.
    expect((await readLogs(store, id)).stdout).toBe('ready\ngot TERM\n');
    expect(await assignmentOf(store, worker.nodeId, id)).toBeUndefined();

    // Nothing lost: placed again, it finishes as attempt 2.
    await placeJobs(store, worker.nodeId, [id]);
    const done = await waitForState(store, id, [...FINAL], 10_000);
    expect(done).toMatchObject({ state: 'Succeeded', attempt: 2 });
    expect(done.history?.map((h) => [h.attempt, h.state, h.failure])).toEqual([[1, 'Pending', 'evicted'], [2, 'Succeeded', undefined]]);
    expect((await readLogs(store, id, 2)).stdout).toBe('finished attempt 2\n');
  });

  it('gives the grace period, then SIGKILL, to a run that ignores SIGTERM', async () => {
    const t = await start();
    const { store, worker } = t;
    // The sleep outlasts any deadline here: a run that ends before it was killed, at any load.
    const id = await submitAndPlace(store, worker.nodeId, { shell: 'trap "" TERM; echo ready; sleep 600' });
    await waitForState(store, id, ['Running']);
    await ready(t, id);
    const t0 = Date.now();
    await store.evictJobs([{ nodeId: worker.nodeId, jobId: id, reason: 'Preempted by job X' }], 1000);
    const job = await waitForState(store, id, ['Pending', ...FINAL], 120_000);
    const elapsed = Date.now() - t0;
    expect(job).toMatchObject({ state: 'Pending', reason: 'Preempted by job X' });
    // Killed (137), after the grace: SIGTERM alone did nothing.
    expect(job.history).toEqual([expect.objectContaining({ failure: 'evicted', exitCode: 137 })]);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
  }, 180_000);

  it('puts a job evicted before its run started straight back to Pending, running nothing', async () => {
    const t = await start();
    const { store, worker } = t;
    const job = await submitJob(store, { shell: 'echo should not run' });
    const node = await store.get(store.keys.node(worker.nodeId), records.node);
    const stored = await store.requireJob(job.id);
    const now = Date.now();
    const evict = { requestedAt: now, graceMs: 1000, reason: 'Reclaimed by queue b' };
    const assignment: Assignment = { jobId: job.id, nodeId: worker.nodeId, attempt: 1, resources: job.resources, gpuDevices: [], assignedAt: now, evict };
    const scheduled: Job = { ...job, state: 'Scheduled', node: worker.nodeId, attempt: 1, scheduledAt: now };
    expect((await store.commitPlacements([{ job: stored, scheduled, assignment, nodeCreateRevision: node?.createRevision ?? '' }])).succeeded).toBe(true);
    const after = await waitForState(store, job.id, ['Pending', ...FINAL], 10_000);
    expect(after).toMatchObject({ state: 'Pending', reason: evict.reason, attempt: 1 });
    expect(after.history).toEqual([expect.objectContaining({ attempt: 1, state: 'Pending', failure: 'evicted' })]);
    expect(after.history?.[0].startedAt).toBeUndefined();
    expect((await readLogs(store, job.id)).stdout).toBe('');
    expect(await assignmentOf(store, worker.nodeId, job.id)).toBeUndefined();
  });

  it('leaves an attempt that already ended alone: its own outcome stands', async () => {
    const t = await start();
    const { store, worker } = t;
    const id = await submitAndPlace(store, worker.nodeId, { shell: 'echo done' });
    await waitForState(store, id, [...FINAL]);
    const before = await store.requireJob(id);
    const result = await store.evictJobs([{ nodeId: worker.nodeId, jobId: id, reason: 'Reclaimed by queue b' }], 1000);
    expect(result).toMatchObject({ succeeded: true, evicted: [], skipped: [id] });
    const after = await store.requireJob(id);
    expect(after.value.state).toBe('Succeeded');
    expect(after.modRevision).toBe(before.modRevision);
    expect(await assignmentOf(store, worker.nodeId, id)).toBeUndefined();
  });

  it('writes nothing when the leadership guard fails, and skips attempts already being stopped', async () => {
    const t = await start();
    const { store, worker } = t;
    const id = await submitAndPlace(store, worker.nodeId, { shell: EVICTABLE });
    await waitForState(store, id, ['Running']);
    const request = { nodeId: worker.nodeId, jobId: id, reason: 'Reclaimed by queue b' };
    // No master holds the leader key: a guard on any term fails.
    const fenced = await store.evictJobs([request], 1000, [store.leaderGuard('12345')]);
    expect(fenced).toMatchObject({ succeeded: false, evicted: [] });
    expect((await assignmentOf(store, worker.nodeId, id))?.value.evict).toBeUndefined();
    // An attempt of another number under the same key is not the one planned for.
    expect(await store.evictJobs([{ ...request, attempt: 7 }], 1000)).toMatchObject({ succeeded: true, skipped: [id] });

    await store.cancelJob(id, 1000);
    expect(await store.evictJobs([request], 1000)).toMatchObject({ succeeded: true, evicted: [], skipped: [id] });
    const job = await waitForState(store, id, ['Pending', ...FINAL], 10_000);
    expect(job.state).toBe('Cancelled');
  });
});
