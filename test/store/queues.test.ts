import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildQueue, isTitanError, newJobId, type Job, type Queue } from '../../pkg/model/index.js';
import { Store } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { randomPrefix } from '../harness/wait.js';

let etcd: EtcdServer;
let store: Store;

beforeAll(async () => {
  etcd = await startEtcd({ name: 'store-queues' });
});
afterAll(async () => {
  store?.close();
  await etcd?.stop();
});
beforeEach(() => {
  store?.close();
  store = new Store({ endpoints: [etcd.endpoints], prefix: randomPrefix() });
});

function job(queue?: string, state: Job['state'] = 'Pending'): Job {
  return {
    id: newJobId(),
    name: 'j',
    kind: 'shell',
    command: ['true'],
    env: {},
    resources: { cpu: 100, memory: 2 ** 20, gpuMilli: 0 },
    priority: 0,
    labels: {},
    state,
    createdAt: Date.now(),
    attempt: 0,
    ...(queue ? { queue } : {}),
  };
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

const names = async (): Promise<string[]> => (await store.listQueues()).items.map((q) => q.value.name);

describe('queues in etcd', () => {
  it('creates, reads, lists, updates and deletes a queue under /<prefix>/queues/<name>', async () => {
    const q = buildQueue('team-a', { quotaGpu: '4', weight: '2' });
    await store.createQueue(q);
    const stored = await store.getQueue('team-a');
    expect(stored?.key).toBe(`${store.keys.root}/queues/team-a`);
    expect(stored?.value).toEqual(q);
    expect(await names()).toEqual(['team-a']);

    const updated = await store.updateQueue('team-a', (current) => buildQueue('team-a', { limitGpu: '8' }, current));
    expect(updated).toMatchObject({ quota: { gpuMilli: 4000 }, limit: { gpuMilli: 8000 }, weight: 2, createdAt: q.createdAt });
    expect((await store.getQueue('team-a'))?.value).toEqual(updated);

    await store.deleteQueue('team-a');
    expect(await names()).toEqual([]);
    expect(await code(() => store.deleteQueue('team-a'))).toBe('NotFound');
    expect(await code(() => store.updateQueue('team-a', (c) => c))).toBe('NotFound');
  });

  it('refuses a duplicate with Conflict, leaving the first unchanged', async () => {
    await store.createQueue(buildQueue('q', { quotaCpu: '1' }));
    expect(await code(() => store.createQueue(buildQueue('q', { quotaCpu: '2' })))).toBe('Conflict');
    expect((await store.getQueue('q'))?.value.quota.cpu).toBe(1000);
  });

  it('has an implicit default queue: not creatable, not deletable, stored on its first update', async () => {
    expect((await store.requireQueue('default')).weight).toBe(1);
    expect(await code(() => store.createQueue(buildQueue('default', {})))).toBe('Conflict');
    expect(await code(() => store.deleteQueue('default'))).toBe('InvalidInput');
    await store.updateQueue('default', (current) => buildQueue('default', { limitGpu: '2' }, current));
    expect((await store.getQueue('default'))?.value).toMatchObject({ name: 'default', limit: { gpuMilli: 2000 } });
    expect(await code(() => store.requireQueue('nope'))).toBe('NotFound');
  });

  it('validates the tree: parents exist, two levels, children within the parent’s quota', async () => {
    expect(await code(() => store.createQueue(buildQueue('t', { parent: 'dept' })))).toBe('InvalidInput');
    await store.createQueue(buildQueue('dept', { quotaGpu: '4' }));
    await store.createQueue(buildQueue('t1', { parent: 'dept', quotaGpu: '3' }));
    expect(await code(() => store.createQueue(buildQueue('t2', { parent: 'dept', quotaGpu: '2' })))).toBe('InvalidInput');
    expect(await code(() => store.createQueue(buildQueue('x', { parent: 't1' })))).toBe('InvalidInput');
    expect(await code(() => store.updateQueue('dept', (c) => buildQueue('dept', { quotaGpu: '2' }, c)))).toBe('InvalidInput');
    expect(await names()).toEqual(['dept', 't1']);
  });

  it('lets only one of two racing children take the rest of a parent’s quota', async () => {
    await store.createQueue(buildQueue('dept', { quotaGpu: '4' }));
    const other = new Store({ endpoints: [etcd.endpoints], prefix: store.keys.root });
    try {
      const results = await Promise.all(
        [store, other].flatMap((s, i) => [0, 1, 2].map((k) => code(() => s.createQueue(buildQueue(`t${i}${k}`, { parent: 'dept', quotaGpu: '3' }))))),
      );
      expect(results.filter((r) => r === 'ok')).toHaveLength(1);
      expect(results.filter((r) => r !== 'ok').every((r) => r === 'InvalidInput')).toBe(true);
    } finally {
      other.close();
    }
    const children = (await store.listQueues()).items.filter((q) => q.value.parent === 'dept');
    expect(children).toHaveLength(1);
  });

  it('refuses to delete a queue with child queues or unfinished jobs', async () => {
    await store.createQueue(buildQueue('dept', {}));
    await store.createQueue(buildQueue('team', { parent: 'dept' }));
    expect(await code(() => store.deleteQueue('dept'))).toBe('Conflict');

    const running = job('team', 'Running');
    await store.createJobs([running, job('team', 'Succeeded')]);
    expect(await code(() => store.deleteQueue('team'))).toBe('Conflict');
    await store.updateJobsIfUnchanged([{ job: (await store.getJob(running.id))!, next: { ...running, state: 'Failed' } }]);
    await store.deleteQueue('team');
    await store.deleteQueue('dept');
    expect(await names()).toEqual([]);
  });

  it('creates jobs only in queues that exist, in the same transaction', async () => {
    const jobsPrefix = store.keys.collection('jobs');
    const count = async (): Promise<number> => (await store.list(jobsPrefix)).items.length;
    await expect(store.createJobs([job('ghost')])).rejects.toMatchObject({ code: 'InvalidInput', field: 'queue', message: expect.stringMatching(/no queue "ghost"/) });
    expect(await count()).toBe(0);

    await store.createQueue(buildQueue('real', {}));
    await store.createJobs([job('real'), job(), job('default')]);
    expect(await count()).toBe(3);
    const stored: Queue | undefined = (await store.getQueue('real'))?.value;
    expect(stored?.name).toBe('real');

    // A batch naming one missing queue writes nothing, not even its other jobs.
    await expect(store.createJobs([job('real'), job('ghost')])).rejects.toMatchObject({ code: 'InvalidInput' });
    expect(await count()).toBe(3);
  });
});
