import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newJobId, type Job } from '../../pkg/model/index.js';
import { encode } from '../../pkg/store/index.js';
import { ProcessCluster } from '../harness/cluster.js';
import { requireDocker, TEST_IMAGE } from '../harness/docker.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import type { TitanProcess } from '../harness/processes.js';
import { makeJob } from '../harness/jobs.js';
import { nodeRecord } from '../harness/records.js';
import { waitFor } from '../harness/wait.js';

/**
 * A bad record in etcd is quarantined, never fatal: garbage bytes and valid
 * msgpack of the wrong shape under every key family, written before the
 * cluster starts and while it runs, leave the master and the worker up, each
 * bad key is logged once, corrupt jobs end Failed (reason Corrupt), and jobs
 * submitted afterwards still run.
 */
let etcd: EtcdServer;
let cluster: ProcessCluster;

beforeAll(async () => {
  await requireDocker();
  etcd = await startEtcd({ name: 'poison-cluster' });
});
afterAll(async () => {
  await etcd?.stop();
});
afterEach(async () => {
  await cluster?.stop();
});

const GARBAGE = Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37]);

function countLines(output: string, text: string): number {
  return output.split('\n').filter((line) => line.includes(text)).length;
}

function alive(p: TitanProcess): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

async function runsToSuccess(c: ProcessCluster, tag: string): Promise<void> {
  const res = await c.cli('submit', '--image', TEST_IMAGE, '--cmd', `echo ${tag}`, '--wait');
  expect(res.code, `${res.stderr}\n${c.logs()}`).toBe(0);
  const id = res.stdout.trim().split('\n')[0];
  expect((await c.cli('logs', id)).stdout).toBe(`${tag}\n`);
}

describe('records that cannot poison the cluster', () => {
  it('bad records under every key family, before start-up and while running, are skipped and logged once', async () => {
    cluster = new ProcessCluster(etcd);
    const { keys } = cluster.store;
    const node = `poison-${Math.random().toString(36).slice(2, 7)}`;
    const put = (key: string, value: Buffer) => cluster.store.client.put(key).value(value);

    // Before start-up: one garbage and one wrong-shape record per family.
    const garbageJob = newJobId();
    const shapelessJob = newJobId(); // "Pending" in its bytes: the master decodes it, and finds it wrong
    const before = {
      garbageJob: keys.job(garbageJob),
      shapelessJob: keys.job(shapelessJob),
      notAJobId: keys.job('not-a-job-id'),
      garbageNode: keys.node('ghost'),
      shapelessNode: keys.node('ghost2'),
      garbageAssignment: keys.assignment(node, newJobId()),
      shapelessAssignment: keys.assignment(node, newJobId()),
      garbageQueue: keys.queue('broken'),
      garbageLog: keys.logChunk(node, newJobId(), 1, 0),
    };
    await put(before.garbageJob, GARBAGE);
    await put(before.shapelessJob, encode({ id: shapelessJob, state: 'Pending' }));
    await put(before.notAJobId, GARBAGE);
    await put(before.garbageNode, GARBAGE);
    await put(before.shapelessNode, encode({ id: 'ghost2', capacity: { cpu: 'all' } }));
    await put(before.garbageAssignment, GARBAGE);
    await put(before.shapelessAssignment, encode({ jobId: 3, resources: null }));
    await put(before.garbageQueue, GARBAGE);
    await put(before.garbageLog, GARBAGE);
    // The leader key too: held by no lease, it is no master's, and must not block every campaign.
    await put(keys.leader(), GARBAGE);
    // And the worker's own registration: no worker holds it, so the worker takes it over.
    await put(keys.node(node), GARBAGE);

    const master = cluster.startMaster();
    const worker = cluster.startWorker(node);
    await waitFor('the worker to register', async () => (await cluster.store.getNode(node)) !== undefined, 20_000);
    await runsToSuccess(cluster, 'after-bad-records');

    // The corrupt jobs whose ids can be read end Failed with reason Corrupt.
    for (const id of [garbageJob, shapelessJob]) {
      const failed = await waitFor(() => `job ${id} to be failed as corrupt\n${cluster.logs()}`, async () => {
        const job = await cluster.store.getJob(id).catch(() => undefined);
        return job?.value.state === 'Failed' ? job.value : undefined;
      });
      expect(failed.reason).toMatch(/^Corrupt: the stored record could not be read/);
    }

    // While running: more bad records, over live keys too.
    const during = {
      garbageJob: keys.job(newJobId()),
      garbageNode: keys.node('ghost3'),
      garbageAssignment: keys.assignment(node, newJobId()),
      shapelessQueue: keys.queue('broken2'),
    };
    await put(during.garbageJob, GARBAGE);
    await put(during.garbageNode, GARBAGE);
    await put(during.garbageAssignment, encode({ jobId: newJobId(), nodeId: node }));
    await put(during.shapelessQueue, encode({ name: 'broken2', weight: 'heavy' }));
    await runsToSuccess(cluster, 'while-bad-records');

    expect(alive(master), cluster.logs()).toBe(true);
    expect(alive(worker), cluster.logs()).toBe(true);
    // Each bad key the master follows is logged once (not once per pass or re-list).
    const masterOut = master.output();
    for (const key of [before.garbageNode, before.shapelessNode, before.garbageAssignment, before.garbageQueue, during.garbageNode, during.shapelessQueue]) {
      expect(countLines(masterOut, `"key":"${key}"`), `${key}\n${masterOut}`).toBe(1);
    }
    expect(countLines(masterOut, `"key":"${before.notAJobId}"`)).toBe(1);
    // The worker follows its own assignments only: it logs its bad ones, once each.
    const workerOut = worker.output();
    for (const key of [before.garbageAssignment, before.shapelessAssignment, during.garbageAssignment]) {
      expect(countLines(workerOut, `"key":"${key}"`), `${key}\n${workerOut}`).toBe(1);
    }
  });

  for (const [what, corrupt] of [
    // "Pending" in the bytes: the master's jobs watch decodes it and finds it corrupt.
    ['a record with "Pending" in it', (id: string) => encode({ id, state: 'Pending', resources: 7 })],
    // A map without "Pending": the master's jobs watch passes over it; the fold of the node's report reads it.
    ['a record the jobs watch passes over', (id: string) => encode({ id, state: 'Running' })],
  ] as const) {
    it(`a running job whose record is overwritten (${what}) ends Failed (Corrupt), and its container goes`, async () => {
      cluster = new ProcessCluster(etcd);
      const node = `poison-${Math.random().toString(36).slice(2, 7)}`;
      cluster.startMaster();
      cluster.startWorker(node);
      await waitFor('the worker to register', async () => (await cluster.store.getNode(node)) !== undefined, 20_000);
      const res = await cluster.cli('submit', '--image', TEST_IMAGE, '--cmd', 'sleep 5');
      const id = res.stdout.trim();
      await waitFor('running', async () => (await cluster.store.getJob(id))?.value.state === 'Running', 30_000);
      await cluster.store.client.put(cluster.store.keys.job(id)).value(corrupt(id));
      const failed: Job = await waitFor(() => `failed as corrupt\n${cluster.logs()}`, async () => {
        const job = await cluster.store.getJob(id).catch(() => undefined);
        return job?.value.state === 'Failed' ? job.value : undefined;
      }, 30_000);
      expect(failed.reason).toMatch(/^Corrupt/);
      await waitFor('the assignment to go', async () => (await cluster.store.getAssignment(node, id)) === undefined, 20_000);
      await runsToSuccess(cluster, 'after-corrupt-running');
    });
  }

  it('a master starts on any number of jobs at the size limit (5 MB of pending jobs)', async () => {
    cluster = new ProcessCluster(etcd);
    const env = { BLOB: 'x'.repeat(12 * 1024) };
    await cluster.store.createJobs(Array.from({ length: 420 }, () => makeJob({ env })));
    const master = cluster.startMaster();
    await waitFor(() => `the master to start\n${cluster.logs()}`, () => /"pending":420,.*master started/.test(master.output()), 30_000);
    expect(master.output()).not.toMatch(/cannot reach etcd|re-listing/);
    // And places them: each placement writes the job twice (its key, the assignment's copy), so batches are cut by bytes too.
    await cluster.store.client.put(cluster.store.keys.node('big')).value(encode(nodeRecord('big', { capacity: { cpu: 1_000_000, memory: 2 ** 50, gpuMilli: 0 }, executors: ['shell'] })));
    await waitFor(() => `all 420 placed\n${cluster.logs()}`, async () => {
      const { items } = await cluster.store.listAssignments('big');
      return items.length === 420 ? true : undefined;
    }, 30_000);
    expect(master.output()).not.toMatch(/too large|scheduling pass failed/);
  });
});
