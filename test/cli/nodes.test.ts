import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Assignment, NodeInfo } from '../../pkg/model/index.js';
import { encode } from '../../pkg/store/codec.js';
import type { Store } from '../../pkg/store/store.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
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

beforeAll(async () => {
  etcd = await startEtcd({ name: 'cli-nodes' });
  store = openStore(etcd.endpoints, prefix);
});

afterAll(async () => {
  store?.close();
  await etcd?.stop();
});

describe('titan nodes', () => {
  it('says so when there are no nodes', async () => {
    const res = await runCli(['nodes'], { endpoints: etcd.endpoints, prefix });
    expect(res).toMatchObject({ code: 0, stdout: '' });
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
    const rows = res.stdout.trimEnd().split('\n').map((l) => l.split(/\s{2,}/));
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
  });
});
