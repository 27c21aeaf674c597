import { describe, expect, it } from 'vitest';
import type { QueueUsage } from '../../internal/cli/queues.js';
import type { Assignment, GpuDevice, Job, NodeInfo, Queue } from '../../pkg/model/index.js';
import { encode } from '../../pkg/store/codec.js';
import { countKeys, makeJob, putJob, snapshot } from './fixtures.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { runCli } from './run-cli.js';

const ctx = etcdSuite('cli-queues');
const GiB = 2 ** 30;
const cli = (...args: string[]) => runCli(args, { endpoints: ctx.etcd.endpoints, prefix: ctx.prefix });


async function listJson(): Promise<Map<string, QueueUsage>> {
  const res = await cli('queue', 'list', '-o', 'json');
  expect(res.code, res.stderr).toBe(0);
  return new Map((JSON.parse(res.stdout) as QueueUsage[]).map((q) => [q.name, q]));
}

describe('titan queue create|update|delete|list', () => {
  it('creates a queue, shows it, changes it and deletes it', async () => {
    const created = await cli('queue', 'create', 'team-a', '--quota-cpu', '8', '--quota-mem', '32Gi', '--quota-gpu', '4', '--limit-gpu', '8', '--weight', '2');
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toBe('queue team-a created: quota 8/32Gi/4, limit -/-/8, weight 2 (cpu/memory/gpu)\n');
    expect((await ctx.store.getQueue('team-a'))?.value).toMatchObject({
      quota: { cpu: 8000, memory: 32 * GiB, gpuMilli: 4000 },
      limit: { gpuMilli: 8000 },
      weight: 2,
    });

    const table = await cli('queue', 'list');
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+PARENT\s+QUOTA\s+LIMIT\s+WEIGHT\s+ALLOCATED\s+PENDING\s+FAIR SHARE$/);
    expect(lines.slice(1).map((l) => l.split(/\s{3,}/))).toEqual([
      ['default', '-', '0/0/0', '-', '1', '0/0/0', '0', '0/0/0'],
      ['team-a', '-', '8/32Gi/4', '-/-/8', '2', '0/0/0', '0', '0/0/0'],
    ]);

    const updated = await cli('queue', 'update', 'team-a', '--limit-gpu', 'none', '--quota-gpu', '6', '-o', 'json');
    expect(updated.code, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({ name: 'team-a', quota: { gpuMilli: 6000 }, weight: 2 });
    expect((await ctx.store.getQueue('team-a'))?.value.limit).toBeUndefined();

    const deleted = await cli('queue', 'delete', 'team-a');
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toBe('queue team-a deleted\n');
    expect(await countKeys(ctx.store, ctx.store.keys.collection('queues'))).toBe(0);
  });

  it('builds a department with teams', async () => {
    expect((await cli('queue', 'create', 'dept-a', '--quota-gpu', '8')).code).toBe(0);
    const team = await cli('queue', 'create', 'team-1', '--parent', 'dept-a', '--quota-gpu', '4');
    expect(team.code, team.stderr).toBe(0);
    expect((await listJson()).get('team-1')).toMatchObject({ parent: 'dept-a' });
    // Deleting the department while it has a team is refused.
    const refused = await cli('queue', 'delete', 'dept-a');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: queue "dept-a" still has child queues \(team-1\)/);
  });

  it('refuses a duplicate with Conflict (exit 1), as JSON with -o json', async () => {
    expect((await cli('queue', 'create', 'q')).code).toBe(0);
    const before = await snapshot(ctx.store);
    const dup = await cli('queue', 'create', 'q', '--quota-gpu', '1');
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/^error: queue "q" already exists/);
    const json = await cli('queue', 'create', 'q', '-o', 'json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr)).toEqual({ error: { code: 'Conflict', message: expect.stringMatching(/already exists/) } });
    expect(await snapshot(ctx.store)).toEqual(before);
  });

  const bad: [string, string[], RegExp][] = [
    ['bad name', ['queue', 'create', 'a/b'], /^error: name: /],
    ['bad quota', ['queue', 'create', 'q', '--quota-gpu', 'many'], /^error: quotaGpu: /],
    ['limit below quota', ['queue', 'create', 'q', '--quota-cpu', '8', '--limit-cpu', '4'], /^error: limitCpu: the limit \(4 cpu\) is below the quota \(8 cpu\)/],
    ['zero weight', ['queue', 'create', 'q', '--weight', '0'], /^error: weight: /],
    ['unknown parent', ['queue', 'create', 'q', '--parent', 'nope'], /^error: parent: no queue "nope"/],
    ['creating default', ['queue', 'create', 'default'], /^error: the default queue always exists/],
    ['deleting default', ['queue', 'delete', 'default'], /^error: name: the default queue always exists; it cannot be deleted/],
    ['update without flags', ['queue', 'update', 'default'], /^error: queue: nothing to change/],
    ['unknown option', ['queue', 'create', 'q', '--quota-tpu', '1'], /unknown option '--quota-tpu'/],
  ];

  it.each(bad)('%s: fails and writes nothing', async (what, args, message) => {
    const before = await snapshot(ctx.store);
    const res = await cli(...args);
    expect(res.code).toBe(what === 'creating default' ? 1 : 2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(message);
    expect(await snapshot(ctx.store)).toEqual(before);
  });

  it('changes the default queue, which is then stored', async () => {
    const res = await cli('queue', 'update', 'default', '--limit-gpu', '2');
    expect(res.code, res.stderr).toBe(0);
    expect((await ctx.store.getQueue('default'))?.value).toMatchObject({ name: 'default', limit: { gpuMilli: 2000 } });
    expect((await listJson()).get('default')).toMatchObject({ implicit: false, limit: { gpuMilli: 2000 } });
  });
});

describe('titan submit --queue', () => {
  it('rejects a queue that does not exist (exit 2) and writes nothing, single and bulk', async () => {
    const before = await snapshot(ctx.store);
    for (const args of [
      ['submit', '--shell', 'true', '--queue', 'ghost'],
      ['submit', '-n', '5', '-t', '1', '--queue', 'ghost'],
    ]) {
      const res = await cli(...args);
      expect(res.code).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toMatch(/^error: queue: no queue "ghost" \(see titan queue list/);
    }
    expect(await snapshot(ctx.store)).toEqual(before);
  });

  it('stores the queue of a job submitted to an existing queue', async () => {
    expect((await cli('queue', 'create', 'team-a')).code).toBe(0);
    const res = await cli('submit', '--shell', 'true', '--queue', 'team-a', '-o', 'json');
    expect(res.code, res.stderr).toBe(0);
    const job = JSON.parse(res.stdout) as Job;
    expect((await ctx.store.requireJob(job.id)).value.queue).toBe('team-a');
    const bulk = await cli('submit', '-n', '3', '-t', '1', '--queue', 'team-a');
    expect(bulk.code, bulk.stderr).toBe(0);
    const inDefault = await cli('submit', '--shell', 'true', '--queue', 'default', '-o', 'json');
    expect(inDefault.code, inDefault.stderr).toBe(0);
    expect((await ctx.store.requireJob((JSON.parse(inDefault.stdout) as Job).id)).value.queue).toBeUndefined();
    expect((await listJson()).get('team-a')?.pending).toBe(4);
    expect((await listJson()).get('default')?.pending).toBe(1);
  });

  it('refuses to delete a queue with unfinished jobs', async () => {
    expect((await cli('queue', 'create', 'busy')).code).toBe(0);
    expect((await cli('submit', '--shell', 'true', '--queue', 'busy')).code).toBe(0);
    const res = await cli('queue', 'delete', 'busy');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/still has 1 job\(s\) that have not ended/);
    expect(await ctx.store.getQueue('busy')).toBeDefined();
  });
});

describe('titan queue list: allocation, pending jobs and fair share', () => {
  function node(id: string, gpuCount: number): NodeInfo {
    const gpus: GpuDevice[] = Array.from({ length: gpuCount }, (_, index) => ({ index, uuid: `${id}-${index}`, model: 'A100', memory: 0 }));
    return { id, hostname: id, capacity: { cpu: 32000, memory: 128 * GiB, gpuMilli: gpuCount * 1000 }, gpus, labels: {}, executors: ['docker'], registeredAt: 1, version: 'test' };
  }

  it('sums what each queue’s placed jobs hold, counts its pending jobs and shows its fair share', async () => {
    for (const args of [
      ['queue', 'create', 'team-a', '--quota-gpu', '4'],
      ['queue', 'create', 'team-b', '--quota-gpu', '4'],
    ]) expect((await cli(...args)).code).toBe(0);
    await ctx.store.client.put(ctx.store.keys.node('n1')).value(encode(node('n1', 8)));
    const gpuJob = (queue: string, state: Job['state'], gpus: number): Job =>
      makeJob({ queue, state, resources: { cpu: 1000, memory: 4 * GiB, gpuMilli: gpus * 1000 }, ...(state === 'Running' ? { node: 'n1', attempt: 1 } : {}) });
    const running = [gpuJob('team-a', 'Running', 2), gpuJob('team-a', 'Running', 4)];
    const pending = [gpuJob('team-a', 'Pending', 1), gpuJob('team-b', 'Pending', 2), gpuJob('team-b', 'Pending', 2), gpuJob('team-b', 'Pending', 4)];
    for (const j of [...running, ...pending, gpuJob('team-b', 'Succeeded', 8)]) await putJob(ctx.store, j);
    for (const j of running) {
      const a: Assignment = { jobId: j.id, nodeId: 'n1', attempt: 1, resources: j.resources, gpuDevices: [], assignedAt: 1 };
      await ctx.store.client.put(ctx.store.keys.assignment('n1', j.id)).value(encode(a));
    }

    const queues = await listJson();
    expect(queues.get('team-a')).toMatchObject({ allocated: { cpu: 2000, memory: 8 * GiB, gpuMilli: 6000 }, running: 2, pending: 1 });
    expect(queues.get('team-b')).toMatchObject({ allocated: { cpu: 0, memory: 0, gpuMilli: 0 }, running: 0, pending: 3 });
    // 8 GPUs, both want more than their quota of 4: each deserves its quota, with the
    // CPU and memory its jobs need per GPU (a: 3 CPUs for 7 GPUs, b: 3 for 8).
    expect(queues.get('team-a')?.fairShare).toEqual({ cpu: Math.round(3000 * 4 / 7), memory: Math.round(12 * GiB * 4 / 7), gpuMilli: 4000 });
    expect(queues.get('team-b')?.fairShare).toEqual({ cpu: 1500, memory: 6 * GiB, gpuMilli: 4000 });

    const table = (await cli('queue', 'list')).stdout.trimEnd().split('\n').map((l) => l.split(/\s{3,}/));
    expect(table.find((r) => r[0] === 'team-a')).toEqual(['team-a', '-', '0/0/4', '-', '1', '2/8Gi/6', '1', '1.714/6.9Gi/4']);
    expect(table.find((r) => r[0] === 'team-b')).toEqual(['team-b', '-', '0/0/4', '-', '1', '0/0/0', '3', '1.5/6Gi/4']);
    const stored: Queue | undefined = (await ctx.store.getQueue('team-b'))?.value;
    expect(stored?.name).toBe('team-b');
  });
});
