import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Master, resolveMasterConfig } from '../../internal/master/index.js';
import type { Assignment, GpuDevice, NodeInfo } from '../../pkg/model/index.js';
import { encode } from '../../pkg/store/codec.js';
import type { Store } from '../../pkg/store/store.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/wait.js';
import { openStore, randomPrefix } from './fixtures.js';
import { runCli } from './run-cli.js';

let etcd: EtcdServer;
let store: Store;
const prefix = randomPrefix();
const GiB = 2 ** 30;

function node(id: string, overrides: Partial<NodeInfo> = {}): NodeInfo {
  return {
    id,
    hostname: id,
    capacity: { cpu: 4000, memory: 8 * GiB, gpuMilli: 0 },
    gpus: [],
    labels: {},
    executors: ['docker', 'shell'],
    registeredAt: Date.now() - 2 * 3_600_000,
    version: 'test',
    ...overrides,
  };
}

function assignment(nodeId: string, jobId: string, cpu: number, memory: number, gpu = 0): Assignment {
  return { jobId, nodeId, attempt: 1, resources: { cpu, memory, gpuMilli: gpu * 1000 }, gpuDevices: [], assignedAt: Date.now() };
}

function gpus(count: number, model: string): GpuDevice[] {
  return Array.from({ length: count }, (_, index) => ({ index, uuid: `GPU-${model}-${index}`, model, memory: 16 * GiB }));
}

/** The table rows after the placement-policy line, split into cells. */
function tableRows(stdout: string): string[][] {
  return stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/\s{2,}/));
}

beforeAll(async () => {
  etcd = await startEtcd({ name: 'cli-nodes' });
  store = openStore(etcd.endpoints, prefix);
});

afterAll(async () => {
  store?.close();
  await etcd?.stop();
});

describe('titan nodes', () => {
  it('says so when there are no nodes (and that no master leads)', async () => {
    const res = await runCli(['nodes'], { endpoints: etcd.endpoints, prefix });
    expect(res).toMatchObject({ code: 0, stdout: 'placement policy: unknown (no master leads)\n' });
    expect(res.stderr).toMatch(/no worker nodes/);
    const json = await runCli(['nodes', '-o', 'json'], { endpoints: etcd.endpoints, prefix });
    expect(JSON.parse(json.stdout)).toEqual([]);
  });

  it('shows capacity, allocation from assignments, jobs, executors, labels and age', async () => {
    const gpuNode = node('gpu-1', {
      capacity: { cpu: 16000, memory: 64 * GiB, gpuMilli: 2000 },
      labels: { zone: 'a', gpu: 'a100' },
      registeredAt: Date.now() - 3 * 86_400_000,
    });
    await store.client.put(store.keys.node('cpu-1')).value(encode(node('cpu-1', { executors: ['shell'] })));
    await store.client.put(store.keys.node('gpu-1')).value(encode(gpuNode));
    const placed = [
      assignment('cpu-1', 'job-a', 500, 512 * 2 ** 20),
      assignment('cpu-1', 'job-b', 1500, 1536 * 2 ** 20),
      assignment('gpu-1', 'job-c', 8000, 32 * GiB, 1),
      assignment('gone-1', 'job-d', 1000, GiB), // a node that left: not shown
    ];
    for (const a of placed) await store.client.put(store.keys.assignment(a.nodeId, a.jobId)).value(encode(a));

    const res = await runCli(['nodes'], { endpoints: etcd.endpoints, prefix });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.split('\n')[0]).toBe('placement policy: unknown (no master leads)');
    const rows = tableRows(res.stdout);
    expect(rows).toEqual([
      ['NODE', 'CPU', 'MEMORY', 'GPU', 'JOBS', 'EXECUTORS', 'LABELS', 'AGE'],
      ['cpu-1', '2/4', '2Gi/8Gi', '0/0', '2', 'shell', '-', '2h'],
      ['gpu-1', '8/16', '32Gi/64Gi', '1/2', '1', 'docker,shell', 'gpu=a100,zone=a', '3d'],
    ]);

    const json = await runCli(['nodes', '--output', 'json'], { endpoints: etcd.endpoints, prefix });
    const nodes = JSON.parse(json.stdout) as (NodeInfo & { allocated: unknown; jobs: number; jobIds: string[] })[];
    expect(nodes.map((n) => n.id)).toEqual(['cpu-1', 'gpu-1']);
    expect(nodes[0]).toMatchObject({
      capacity: { cpu: 4000, memory: 8 * GiB, gpuMilli: 0 },
      allocated: { cpu: 2000, memory: 2 * GiB, gpuMilli: 0 },
      jobs: 2,
      jobIds: ['job-a', 'job-b'],
    });
    expect(nodes[1]).toMatchObject({ allocated: { cpu: 8000, memory: 32 * GiB, gpuMilli: 1000 }, jobs: 1, labels: { zone: 'a', gpu: 'a100' } });
    // Still the array of nodes; the policy rides along on each (null: no master leads).
    expect(nodes.map((n) => (n as { policy?: unknown }).policy)).toEqual([null, null]);
  });

  it('shows a GPU share against capacity with the node\'s GPU models', async () => {
    const own = randomPrefix();
    const local = openStore(etcd.endpoints, own);
    try {
      const v100 = node('v100-1', { capacity: { cpu: 32000, memory: 128 * GiB, gpuMilli: 8000 }, gpus: gpus(8, 'V100M16') });
      const mixed = node('mixed-1', { capacity: { cpu: 32000, memory: 128 * GiB, gpuMilli: 2000 }, gpus: [...gpus(1, 'A100'), ...gpus(1, 'H100')] });
      for (const n of [v100, mixed]) await local.client.put(local.keys.node(n.id)).value(encode(n));
      const share: Assignment = { ...assignment('v100-1', 'job-q', 1000, GiB), resources: { cpu: 1000, memory: GiB, gpuMilli: 250 }, gpuDevices: ['GPU-V100M16-3'] };
      await local.client.put(local.keys.assignment(share.nodeId, share.jobId)).value(encode(share));

      const res = await runCli(['nodes'], { endpoints: etcd.endpoints, prefix: own });
      expect(res.code, res.stderr).toBe(0);
      const gpuColumn = Object.fromEntries(tableRows(res.stdout).slice(1).map((r) => [r[0], r[3]]));
      expect(gpuColumn).toEqual({ 'mixed-1': '0/2 A100,H100', 'v100-1': '0.25/8 V100M16' });
    } finally {
      local.close();
    }
  });

  it('shows the placement policy the leading master publishes in its leader key', async () => {
    const own = randomPrefix();
    const local = openStore(etcd.endpoints, own);
    const config = resolveMasterConfig({ endpoints: etcd.endpoints, prefix: own, policy: 'fgd', id: 'master-abc', leaseTtl: '2' }, {});
    const master = new Master(config, pino({ level: process.env.LOG_LEVEL ?? 'silent' }));
    let stopped = false;
    try {
      await local.client.put(local.keys.node('n1')).value(encode(node('n1')));
      await master.start();
      await waitFor('master-abc to lead', async () => (await local.getLeader())?.id === 'master-abc', 15_000);
      expect(await local.getLeader()).toMatchObject({ id: 'master-abc', policy: 'fgd' });

      const res = await runCli(['nodes'], { endpoints: etcd.endpoints, prefix: own });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout.split('\n')[0]).toBe('placement policy: fgd (leader master-abc)');
      expect(tableRows(res.stdout)[1][0]).toBe('n1');
      const json = await runCli(['nodes', '-o', 'json'], { endpoints: etcd.endpoints, prefix: own });
      expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ id: 'n1', policy: 'fgd' })]);

      await master.stop();
      stopped = true;
      expect(await local.getLeader()).toBeUndefined();
      const after = await runCli(['nodes'], { endpoints: etcd.endpoints, prefix: own });
      expect(after.stdout.split('\n')[0]).toBe('placement policy: unknown (no master leads)');
    } finally {
      if (!stopped) await master.stop();
      local.close();
    }
  });

  it('says the policy is unknown for a leader that did not publish one (an older master)', async () => {
    const own = randomPrefix();
    const local = openStore(etcd.endpoints, own);
    try {
      await local.client.put(local.keys.leader()).value(encode({ id: 'old-master', hostname: 'h', since: Date.now() }));
      await local.client.put(local.keys.node('n1')).value(encode(node('n1')));
      const res = await runCli(['nodes'], { endpoints: etcd.endpoints, prefix: own });
      expect(res.stdout.split('\n')[0]).toBe('placement policy: unknown (leader old-master)');
      const json = await runCli(['nodes', '-o', 'json'], { endpoints: etcd.endpoints, prefix: own });
      expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ id: 'n1', policy: null })]);
    } finally {
      local.close();
    }
  });
});
