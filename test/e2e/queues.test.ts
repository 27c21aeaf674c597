import { describe, expect, it } from 'vitest';
import { buildQueue, type Job } from '../../pkg/model/index.js';
import type { Store } from '../../pkg/store/index.js';
import { clusterSuite, submitJob, waitFor } from '../worker/helpers.js';

/** A job whose first attempt runs until it is stopped, and whose next attempts finish after `seconds`. */
const gpuJob = (seconds: number): string =>
  `trap 'exit 143' TERM; if [ "$TITAN_ATTEMPT" = 1 ]; then sleep 60 & wait; else sleep ${seconds}; fi`;

/** The stored jobs, in the order of their ids. */
const jobsOf = (store: Store, ids: string[]): Promise<Job[]> => Promise.all(ids.map(async (id) => (await store.requireJob(id)).value));

describe('queues through etcd: fair-share order and reclaim', () => {
  const suite = clusterSuite('queues');

  it('reclaims borrowed GPUs for a queue below its quota within one cycle; nothing is lost', async () => {
    const cluster = await suite.start({ gpus: '4', cpu: '16' });
    const { store } = cluster;
    await cluster.startMaster();
    await store.createQueue(buildQueue('a', { quotaGpu: '0' }));
    await store.createQueue(buildQueue('b', { quotaGpu: '2' }));

    // Queue a borrows the whole idle cluster: 4 GPUs.
    const borrowed = await Promise.all([0, 1, 2, 3].map(() => submitJob(store, { shell: gpuJob(1), gpu: 1, queue: 'a' })));
    const borrowedIds = borrowed.map((j) => j.id);
    await waitFor('queue a to run on all 4 GPUs', async () => ((await jobsOf(store, borrowedIds)).every((j) => j.state === 'Running') ? true : undefined));

    // Queue b (quota 2 GPUs) submits: two of a's jobs are evicted and b runs at its quota.
    const owned = await Promise.all([0, 1].map(() => submitJob(store, { shell: 'sleep 1', gpu: 1, queue: 'b' })));
    const ownedIds = owned.map((j) => j.id);
    await waitFor('queue b to run at its quota', async () => ((await jobsOf(store, ownedIds)).every((j) => ['Running', 'Succeeded'].includes(j.state)) ? true : undefined), 30_000);

    const evicted = (await jobsOf(store, borrowedIds)).filter((j) => (j.history ?? []).some((h) => h.reason === 'Reclaimed by queue b'));
    expect(evicted).toHaveLength(2);
    for (const job of evicted) expect(job.failureCount ?? 0).toBe(0);

    // Everything finishes: the evicted jobs run again later (the others are stopped here: they would run a minute).
    for (const job of await jobsOf(store, borrowedIds)) if (job.state === 'Running' && job.attempt === 1) await store.cancelJob(job.id, 1000);
    const all = [...evicted.map((j) => j.id), ...ownedIds];
    const final = await waitFor('every job to finish', async () => {
      const jobs = await jobsOf(store, all);
      return jobs.every((j) => j.state === 'Succeeded') ? jobs : undefined;
    }, 60_000);
    expect(final).toHaveLength(4);
    for (const job of final.filter((j) => j.queue === 'a')) expect(job.attempt).toBe(2);
  }, 120_000);

  it('offers capacity by fair share: two flooded queues with equal quota split the GPUs', async () => {
    const cluster = await suite.start({ gpus: '4', cpu: '16' });
    const { store } = cluster;
    await store.createQueue(buildQueue('x', { quotaGpu: '2' }));
    await store.createQueue(buildQueue('y', { quotaGpu: '2' }));
    // Queue x floods first, before any master runs; then y.
    const xs = await Promise.all([0, 1, 2, 3, 4, 5].map(() => submitJob(store, { shell: 'sleep 30', gpu: 1, queue: 'x' })));
    const ys = await Promise.all([0, 1, 2, 3, 4, 5].map(() => submitJob(store, { shell: 'sleep 30', gpu: 1, queue: 'y' })));
    await cluster.startMaster();
    const running = await waitFor('4 jobs placed', async () => {
      const jobs = await jobsOf(store, [...xs, ...ys].map((j) => j.id));
      const placed = jobs.filter((j) => j.state !== 'Pending');
      return placed.length === 4 ? placed : undefined;
    });
    expect(running.filter((j) => j.queue === 'x')).toHaveLength(2);
    expect(running.filter((j) => j.queue === 'y')).toHaveLength(2);
  }, 60_000);
});
