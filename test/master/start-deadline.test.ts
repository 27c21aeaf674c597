import type { Lease } from 'etcd3';
import { records } from '../../pkg/store/index.js';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Master, resolveMasterConfig } from '../../internal/master/index.js';
import { buildJobSpec, newJobId, type Job, type NodeInfo } from '../../pkg/model/index.js';
import { Store } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { randomPrefix, waitFor } from '../harness/wait.js';

let etcd: EtcdServer;
let store: Store | undefined;
let master: Master | undefined;
let lease: Lease | undefined;

beforeAll(async () => {
  etcd = await startEtcd({ name: 'start-deadline' });
});
afterAll(async () => {
  await etcd?.stop();
});
afterEach(async () => {
  await master?.stop();
  await lease?.revoke().catch(() => undefined);
  store?.close();
  master = store = lease = undefined;
});

/** A master with a 1 s start deadline and a node registered the way a worker does, with no worker behind it: nothing ever claims. */
async function clusterWithSilentNode(nodeLostRetries: string): Promise<{ store: Store; nodeId: string }> {
  const prefix = randomPrefix();
  store = new Store({ endpoints: [etcd.endpoints], prefix });
  const nodeId = 'silent';
  lease = store.client.lease(10, { autoKeepAlive: true });
  const info: NodeInfo = {
    id: nodeId,
    hostname: nodeId,
    capacity: { cpu: 4000, memory: 2 ** 32, gpuMilli: 0 },
    gpus: [],
    labels: {},
    executors: ['docker'],
    registeredAt: Date.now(),
    version: 'test',
  };
  await store.putNode(info, await lease.grant());
  master = new Master(
    resolveMasterConfig({ endpoints: etcd.endpoints, prefix, leaseTtl: '2', startDeadline: '1s', nodeLostRetries }, {}),
    pino({ level: 'warn' }),
  );
  await master.start();
  return { store, nodeId };
}

async function submit(s: Store): Promise<Job> {
  const job: Job = { ...buildJobSpec({ image: 'busybox', cpu: '1' }), id: newJobId(), state: 'Pending', createdAt: Date.now(), attempt: 0 };
  await s.createJobs([job]);
  return job;
}

describe('master: start deadline', () => {
  it('an attempt never started goes back to Pending, and the node-lost budget bounds the bouncing', async () => {
    const { store: s, nodeId } = await clusterWithSilentNode('1');
    const { id } = await submit(s);
    await waitFor('the job placed', async () => (await s.requireJob(id)).value.state === 'Scheduled');
    // Taken back once (Pending, placed again: attempt 2), then the budget of 1 is spent: Failed.
    const failed = await waitFor('the job failed', async () => {
      const job = (await s.requireJob(id)).value;
      return job.state === 'Failed' ? job : undefined;
    }, 20_000);
    expect(failed.attempt).toBe(2);
    expect(failed.history?.map((h) => h.reason)).toEqual([
      expect.stringMatching(`^StartDeadline: node ${nodeId} did not start it within 1 s`),
      expect.stringMatching(`^StartDeadline: node ${nodeId} did not start it within 1 s`),
    ]);
    expect(failed.history?.map((h) => h.failure)).toEqual(['node-lost', 'node-lost']);
    expect(await s.get(s.keys.assignment(nodeId, id), records.assignment)).toBeUndefined();
  }, 30_000);

  it('an attempt its worker claimed is never taken back, however long it runs', async () => {
    const { store: s, nodeId } = await clusterWithSilentNode('3');
    const { id } = await submit(s);
    const assignment = await waitFor('the assignment', () => s.get(s.keys.assignment(nodeId, id), records.assignment));
    // The claim, as a worker makes it: a Running report, fenced by the assignment, which the leader folds.
    expect(await s.putReport(assignment, { jobId: id, attempt: assignment.value.attempt, state: 'Running', startedAt: Date.now() })).toBe(true);
    await waitFor('the job to be Running', async () => ((await s.requireJob(id)).value.state === 'Running' ? true : undefined));
    // The sweep the master runs every second, as it runs an hour on: the attempt is past its deadline and still not taken back.
    if (!master) throw new Error('the master is not started');
    expect(await master.startDeadline.sweep(Date.now() + 3_600_000)).toBe(0);
    const job = (await s.requireJob(id)).value;
    expect(job).toMatchObject({ state: 'Running', attempt: 1 });
    expect(job.history ?? []).toEqual([]);
    expect(await s.get(s.keys.assignment(nodeId, id), records.assignment)).toBeDefined();
  }, 30_000);
});
