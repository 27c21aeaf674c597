import { describe, expect, it } from 'vitest';
import { IllegalTransitionError, type Assignment, type Job } from '../../pkg/model/index.js';
import { encode, records, txnOp, type Store, type Versioned } from '../../pkg/store/index.js';
import { snapshot } from '../cli/fixtures.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { makeJob } from '../harness/jobs.js';

/**
 * The store's job writers against a real etcd: a write that would take a job
 * to a state the table (pkg/model/transitions.ts) forbids is refused with
 * IllegalTransitionError and writes nothing.
 */
const ctx = etcdSuite('store-job-transitions');

async function stored(store: Store, job: Job): Promise<Versioned<Job>> {
  await store.txn([], [txnOp.put(store.keys.job(job.id), encode(job))]);
  return store.requireJob(job.id);
}

describe('store job writers obey the state table', () => {
  it('updateJobsIfUnchanged refuses a forbidden move for any job of the batch, writing none', async () => {
    const pending = await stored(ctx.store, makeJob());
    const done = await stored(ctx.store, makeJob({ state: 'Succeeded', finishedAt: 5 }));
    const before = await snapshot(ctx.store);
    const write = ctx.store.updateJobsIfUnchanged([
      { job: pending, next: { ...pending.value, reason: 'waiting' } },
      { job: done, next: { ...done.value, state: 'Running' } },
    ]);
    await expect(write).rejects.toBeInstanceOf(IllegalTransitionError);
    await expect(write).rejects.toMatchObject({ code: 'Conflict', jobId: done.value.id, from: 'Succeeded', to: 'Running' });
    expect(await snapshot(ctx.store)).toEqual(before);
    // The allowed half on its own goes through.
    expect((await ctx.store.updateJobsIfUnchanged([{ job: pending, next: { ...pending.value, reason: 'waiting' } }])).succeeded).toBe(true);
  });

  it('endAssignment refuses to end the attempt of a job that is already final', async () => {
    const job = await stored(ctx.store, makeJob({ state: 'Cancelled', attempt: 1, node: 'n1', finishedAt: 5 }));
    const assignmentValue: Omit<Assignment, 'job'> = { jobId: job.value.id, nodeId: 'n1', attempt: 1, resources: job.value.resources, gpuDevices: [], assignedAt: 1 };
    await ctx.store.txn([], [txnOp.put(ctx.store.keys.assignment('n1', job.value.id), encode(assignmentValue))]);
    const assignment = await ctx.store.get(ctx.store.keys.assignment('n1', job.value.id), records.assignment);
    const before = await snapshot(ctx.store);
    await expect(ctx.store.endAssignment(assignment!, job, { ...job.value, state: 'Failed' })).rejects.toBeInstanceOf(IllegalTransitionError);
    expect(await snapshot(ctx.store)).toEqual(before);
  });

  it('retryJob takes Failed and Cancelled jobs back to Pending and refuses a Succeeded one', async () => {
    for (const state of ['Failed', 'Cancelled'] as const) {
      const job = await stored(ctx.store, makeJob({ state, attempt: 2, finishedAt: 5, failureCount: 1 }));
      expect(await ctx.store.retryJob(job.value.id)).toMatchObject({ state: 'Pending', attempt: 2 });
    }
    const done = await stored(ctx.store, makeJob({ state: 'Succeeded', finishedAt: 5 }));
    const before = await snapshot(ctx.store);
    await expect(ctx.store.retryJob(done.value.id)).rejects.toMatchObject({ code: 'Conflict', message: expect.stringMatching(/only Failed or Cancelled jobs can be retried/) });
    expect(await snapshot(ctx.store)).toEqual(before);
  });

  it('cancelJob ends a Pending job and refuses an ended one', async () => {
    const pending = await stored(ctx.store, makeJob());
    expect(await ctx.store.cancelJob(pending.value.id, 1000, 7)).toMatchObject({ state: 'Cancelled', finishedAt: 7, reason: 'cancelled before it was placed' });
    const before = await snapshot(ctx.store);
    await expect(ctx.store.cancelJob(pending.value.id, 1000)).rejects.toMatchObject({ code: 'Conflict', message: expect.stringMatching(/already ended \(Cancelled\)/) });
    expect(await snapshot(ctx.store)).toEqual(before);
  });
});
