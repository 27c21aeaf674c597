import { describe, expect, it } from 'vitest';
import { buildQueue, isTitanError, type Job, type Queue } from '../../pkg/model/index.js';
import { records, Store } from '../../pkg/store/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { makeJob } from '../harness/jobs.js';

const ctx = etcdSuite('store-queues');

function job(queue?: string, state: Job['state'] = 'Pending'): Job {
  return makeJob({ state, ...(queue ? { queue } : {}) });
}

async function code(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (err) {
    if (isTitanError(err)) return err.code;
    throw err;
  }
  return 'ok';
}

const names = async (): Promise<string[]> => (await ctx.store.listQueues()).items.map((q) => q.value.name);

describe('queues in etcd', () => {
  it('creates, reads, lists, updates and deletes a queue under /<prefix>/queues/<name>', async () => {
    const q = buildQueue('team-a', { quotaGpu: '4', weight: '2' });
    await ctx.store.createQueue(q);
    const stored = await ctx.store.getQueue('team-a');
    expect(stored?.key).toBe(`${ctx.store.keys.root}/queues/team-a`);
    expect(stored?.value).toEqual(q);
    expect(await names()).toEqual(['team-a']);

    const updated = await ctx.store.updateQueue('team-a', (current) => buildQueue('team-a', { limitGpu: '8' }, current));
    expect(updated).toMatchObject({ quota: { gpuMilli: 4000 }, limit: { gpuMilli: 8000 }, weight: 2, createdAt: q.createdAt });
    expect((await ctx.store.getQueue('team-a'))?.value).toEqual(updated);

    await ctx.store.deleteQueue('team-a');
    expect(await names()).toEqual([]);
    expect(await code(() => ctx.store.deleteQueue('team-a'))).toBe('NotFound');
    expect(await code(() => ctx.store.updateQueue('team-a', (c) => c))).toBe('NotFound');
  });

  it('refuses a duplicate with Conflict, leaving the first unchanged', async () => {
    await ctx.store.createQueue(buildQueue('q', { quotaCpu: '1' }));
    expect(await code(() => ctx.store.createQueue(buildQueue('q', { quotaCpu: '2' })))).toBe('Conflict');
    expect((await ctx.store.getQueue('q'))?.value.quota.cpu).toBe(1000);
  });

  it('has an implicit default queue: not creatable, not deletable, stored on its first update', async () => {
    expect((await ctx.store.requireQueue('default')).weight).toBe(1);
    expect(await code(() => ctx.store.createQueue(buildQueue('default', {})))).toBe('Conflict');
    expect(await code(() => ctx.store.deleteQueue('default'))).toBe('InvalidInput');
    await ctx.store.updateQueue('default', (current) => buildQueue('default', { limitGpu: '2' }, current));
    expect((await ctx.store.getQueue('default'))?.value).toMatchObject({ name: 'default', limit: { gpuMilli: 2000 } });
    expect(await code(() => ctx.store.requireQueue('nope'))).toBe('NotFound');
  });

  it('validates the tree: parents exist, two levels, children within the parent’s quota', async () => {
    expect(await code(() => ctx.store.createQueue(buildQueue('t', { parent: 'dept' })))).toBe('InvalidInput');
    await ctx.store.createQueue(buildQueue('dept', { quotaGpu: '4' }));
    await ctx.store.createQueue(buildQueue('t1', { parent: 'dept', quotaGpu: '3' }));
    expect(await code(() => ctx.store.createQueue(buildQueue('t2', { parent: 'dept', quotaGpu: '2' })))).toBe('InvalidInput');
    expect(await code(() => ctx.store.createQueue(buildQueue('x', { parent: 't1' })))).toBe('InvalidInput');
    expect(await code(() => ctx.store.updateQueue('dept', (c) => buildQueue('dept', { quotaGpu: '2' }, c)))).toBe('InvalidInput');
    expect(await names()).toEqual(['dept', 't1']);
  });

  it('lets only one of two racing children take the rest of a parent’s quota', async () => {
    await ctx.store.createQueue(buildQueue('dept', { quotaGpu: '4' }));
    const other = new Store({ endpoints: [ctx.etcd.endpoints], prefix: ctx.store.keys.root });
    try {
      const results = await Promise.all(
        [ctx.store, other].flatMap((s, i) => [0, 1, 2].map((k) => code(() => s.createQueue(buildQueue(`t${i}${k}`, { parent: 'dept', quotaGpu: '3' }))))),
      );
      expect(results.filter((r) => r === 'ok')).toHaveLength(1);
      expect(results.filter((r) => r !== 'ok').every((r) => r === 'InvalidInput')).toBe(true);
    } finally {
      other.close();
    }
    const children = (await ctx.store.listQueues()).items.filter((q) => q.value.parent === 'dept');
    expect(children).toHaveLength(1);
  });

  it('refuses to delete a queue with child queues or unfinished jobs', async () => {
    await ctx.store.createQueue(buildQueue('dept', {}));
    await ctx.store.createQueue(buildQueue('team', { parent: 'dept' }));
    expect(await code(() => ctx.store.deleteQueue('dept'))).toBe('Conflict');

    const running = job('team', 'Running');
    await ctx.store.createJobs([running, job('team', 'Succeeded')]);
    expect(await code(() => ctx.store.deleteQueue('team'))).toBe('Conflict');
    await ctx.store.updateJobsIfUnchanged([{ job: (await ctx.store.getJob(running.id))!, next: { ...running, state: 'Failed' } }]);
    await ctx.store.deleteQueue('team');
    await ctx.store.deleteQueue('dept');
    expect(await names()).toEqual([]);
  });

  it('creates jobs only in queues that exist, in the same transaction', async () => {
    const jobsPrefix = ctx.store.keys.collection('jobs');
    const count = async (): Promise<number> => (await ctx.store.list(jobsPrefix, records.job)).items.length;
    await expect(ctx.store.createJobs([job('ghost')])).rejects.toMatchObject({ code: 'InvalidInput', field: 'queue', message: expect.stringMatching(/no queue "ghost"/) });
    expect(await count()).toBe(0);

    await ctx.store.createQueue(buildQueue('real', {}));
    await ctx.store.createJobs([job('real'), job(), job('default')]);
    expect(await count()).toBe(3);
    const stored: Queue | undefined = (await ctx.store.getQueue('real'))?.value;
    expect(stored?.name).toBe('real');

    // A batch naming one missing queue writes nothing, not even its other jobs.
    await expect(ctx.store.createJobs([job('real'), job('ghost')])).rejects.toMatchObject({ code: 'InvalidInput' });
    expect(await count()).toBe(3);
  });
});
