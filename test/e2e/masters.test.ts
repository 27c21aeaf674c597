import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { records } from '../../pkg/store/index.js';
import type { Lease } from 'etcd3';
import type { Job, NodeInfo } from '../../pkg/model/index.js';
import { ProcessCluster } from '../harness/cluster.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { BIN, startProcess } from '../harness/processes.js';
import { waitFor } from '../harness/wait.js';

let etcd: EtcdServer;
let cluster: ProcessCluster;
let lease: Lease | undefined;

beforeAll(async () => {
  etcd = await startEtcd({ name: 'masters' });
});
afterAll(async () => {
  await etcd?.stop();
});
afterEach(async () => {
  await lease?.revoke().catch(() => undefined);
  lease = undefined;
  await cluster?.stop();
});

/** A node registered the way a worker registers, but running nothing: placements stay Scheduled. */
async function registerIdleNode(id: string, cores: number): Promise<void> {
  lease = cluster.store.client.lease(30);
  const info: NodeInfo = {
    id, hostname: id, capacity: { cpu: cores * 1000, memory: 2 ** 40, gpuMilli: 0 }, gpus: [], labels: {},
    executors: ['shell', 'docker'], registeredAt: Date.now(), version: 'test',
  };
  await cluster.store.putNode(info, await lease.grant());
}

async function leaderId(): Promise<string | undefined> {
  return (await cluster.store.get(cluster.store.keys.leader(), records.leader))?.value.id;
}

describe('masters', () => {
  it('queues submissions while no master runs; status reads etcd; a master that starts places them', async () => {
    cluster = new ProcessCluster(etcd);
    await registerIdleNode('idle', 64);
    const submitted = await cluster.cli('submit', '--shell', 'true');
    expect(submitted.code, submitted.stderr).toBe(0);
    const id = submitted.stdout.trim();
    const before = await cluster.cli('status', id, '--output', 'json');
    expect(before.code).toBe(0);
    expect(JSON.parse(before.stdout)).toMatchObject({ status: 'Pending' });
    cluster.startMaster();
    await waitFor('placed', async () => (await cluster.store.requireJob(id)).value.state === 'Scheduled');
  });

  it('a leader SIGKILLed during a 500-job bulk submit loses nothing: all 500 placed exactly once', async () => {
    cluster = new ProcessCluster(etcd);
    await registerIdleNode('idle', 10_000);
    const m1 = cluster.startMaster(['--id', 'm1', '--lease-ttl', '2']);
    const m2 = cluster.startMaster(['--id', 'm2', '--lease-ttl', '2']);
    const first = await waitFor('a leader', leaderId);
    const bulk = startProcess('bulk submit', BIN.titan, ['submit', '-n', '500', '-t', '1', '--output', 'json'], cluster.env);
    await waitFor('some placements', async () => (await cluster.store.listAssignments()).items.length > 0, 20_000, 10);
    const killedAt = Date.now();
    await (first === 'm1' ? m1 : m2).kill('SIGKILL');
    const placedBeforeKill = (await cluster.store.listAssignments()).items.length;
    expect(placedBeforeKill).toBeLessThan(500); // it died mid-work
    expect(await bulk.exited).toBe(0);
    const next = await waitFor('a new leader', async () => {
      const id = await leaderId();
      return id && id !== first ? id : undefined;
    }, 15_000);
    expect(next).not.toBe(first);
    const takeoverSeconds = (Date.now() - killedAt) / 1000;
    expect(takeoverSeconds).toBeLessThan(8);
    await waitFor(() => `500 assignments\n${cluster.logs()}`, async () => (await cluster.store.listAssignments()).items.length === 500, 30_000, 100);
    const jobs = (await cluster.store.listJobs()).items.map((j) => j.value as Job);
    expect(jobs).toHaveLength(500);
    for (const job of jobs) {
      expect(job.state).toBe('Scheduled');
      expect(job.attempt).toBe(1);
    }
    const assignments = (await cluster.store.listAssignments()).items.map((a) => a.value.jobId);
    expect(new Set(assignments).size).toBe(500);
  });
});
