import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Retention, selectExpired } from '../../internal/master/retention.js';
import { newJobId, type Job } from '../../pkg/model/index.js';
import { encode, Store } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { randomPrefix } from '../harness/wait.js';

describe('selectExpired', () => {
  const job = (id: string, finishedAt: number) => ({ id, modRevision: '1', finishedAt, nodes: [] });
  it('removes jobs past the age, then the oldest beyond the count', () => {
    const ended = [job('c', 30), job('a', 10), job('b', 20), job('d', 40)];
    expect(selectExpired(ended, { retainMs: 1000, retainJobs: 2 }, 100).map((j) => j.id)).toEqual(['a', 'b']);
    expect(selectExpired(ended, { retainMs: 85, retainJobs: 10 }, 100).map((j) => j.id)).toEqual(['a']);
    expect(selectExpired(ended, { retainMs: 1000, retainJobs: 10 }, 100)).toEqual([]);
  });
});

describe('retention sweep', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcd({ name: 'retention' });
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('removes old ended jobs with their logs in batches and keeps the rest', async () => {
    const store = new Store({ endpoints: [etcd.endpoints], prefix: randomPrefix() });
    const base = { name: '', kind: 'shell' as const, command: ['true'], env: {}, labels: {}, resources: { cpu: 100, memory: 1, gpuMilli: 0 }, priority: 0, createdAt: 1, attempt: 1 };
    const jobs: Job[] = [];
    for (let i = 0; i < 150; i++) jobs.push({ ...base, id: newJobId(), state: 'Succeeded', finishedAt: 1000 + i, node: 'n1' });
    const running: Job = { ...base, id: newJobId(), state: 'Running' };
    await store.createJobs([...jobs, running]);
    for (const j of jobs.slice(0, 3)) await store.client.put(store.keys.logChunk('n1', j.id, 1, 0)).value(encode({ seq: 0, entries: [] }));
    const retention = new Retention(store, { retainMs: 3_600_000, retainJobs: 20 }, 60_000, () => true, () => [], pino({ level: 'silent' }));

    const first = await retention.sweep(5000);
    expect(first.removed).toBe(130);
    const left = (await store.listJobs()).items.map((j) => j.value.id);
    expect(left).toHaveLength(21);
    expect(left).toContain(running.id);
    expect(left).toContain(jobs[149].id);
    expect(left).not.toContain(jobs[0].id);
    expect(await store.client.getAll().prefix(store.keys.collection('logs')).count()).toBe(0);

    expect((await retention.sweep(5000)).removed).toBe(0);
    store.close();
  });
});
