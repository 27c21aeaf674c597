import fs from 'node:fs';
import { records } from '../../pkg/store/index.js';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Master } from '../../internal/master/index.js';
import { NO_CAUSES, type Assignment, type Job } from '../../pkg/model/index.js';
import { encode, Store, txnOp } from '../../pkg/store/index.js';
import { TEST_IMAGE, removeContainersByLabel, requireDocker } from '../harness/docker.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { BIN, startProcess, type TitanProcess } from '../harness/processes.js';
import {
  containersOf,
  randomNodeId,
  randomPrefix,
  runningContainer,
  startMaster,
  startTestWorker,
  submitJob,
  waitFor,
  waitForState,
  type TestWorker,
} from './helpers.js';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.js';

const TTL_SECONDS = 3;

describe('worker: fencing', () => {
  let etcd: EtcdServer;
  let docker: Docker;

  beforeAll(async () => {
    docker = await requireDocker();
    etcd = await startEtcd({ name: 'worker-fencing' });
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('a report or log write with a stale assignment is fenced and changes nothing', async () => {
    const store = new Store({ endpoints: [etcd.endpoints], prefix: randomPrefix() });
    try {
      const node = 'n1';
      const base: Job = {
        id: 'JOB0000000001', name: 'j', kind: 'shell', command: ['true'], env: {}, labels: {}, priority: 0,
        resources: { cpu: 100, memory: 1, gpuMilli: 0 }, state: 'Pending', createdAt: Date.now(), attempt: 0,
      };
      await store.createJobs([base]);
      const key = store.keys.assignment(node, base.id);
      /** Places an attempt the way a master does: the job Scheduled and its assignment, in one transaction. */
      const place = async (attempt: number): Promise<void> => {
        const assignment: Assignment = { jobId: base.id, nodeId: node, attempt, resources: base.resources, gpuDevices: [], assignedAt: Date.now() };
        // The master's requeue deleted the previous assignment first (etcd allows one op per key per txn).
        await store.txn([], [txnOp.del(key)]);
        await store.txn([], [txnOp.put(store.keys.job(base.id), encode({ ...base, state: 'Scheduled', node, attempt })), txnOp.put(key, encode(assignment))]);
      };
      await place(1);
      const stale = await store.get(key, records.assignment);
      if (!stale) throw new Error('no assignment');
      const running = { jobId: base.id, attempt: 1, state: 'Running' as const, startedAt: Date.now() };
      expect(await store.putReport(stale, running)).toBe(true);

      // Requeued and placed again on the same node: same key, new create revision, attempt 2.
      await place(2);
      const reportKey = store.keys.report(node, base.id);
      const before = await store.client.get(reportKey).buffer();
      const ended = { ...running, state: 'Ended' as const, end: { result: { type: 'exited' as const, exitCode: 1 }, causes: NO_CAUSES, finishedAt: Date.now() } };
      expect(await store.putReport(stale, ended)).toBe(false);
      expect(await store.appendLogChunks(stale, [{ seq: 0, entries: [{ stream: 'stdout', data: 'stale' }] }])).toBe(false);

      // Even an assignment for the same attempt number, if re-created, fences the old holder (create revision).
      const sameAttempt = await store.get(key, records.assignment);
      if (!sameAttempt) throw new Error('no assignment');
      await store.txn([], [txnOp.del(key)]);
      await store.txn([], [txnOp.put(key, encode(sameAttempt.value))]);
      expect(await store.putReport(sameAttempt, { ...ended, attempt: 2 })).toBe(false);

      expect(await store.client.get(reportKey).buffer()).toEqual(before);
      expect((await store.readLogChunks(node, base.id, 1)).chunks).toEqual([]);
      expect((await store.readLogChunks(node, base.id, 2)).chunks).toEqual([]);
      expect(await store.get(key, records.assignment)).toBeDefined();
    } finally {
      store.close();
    }
  });

  describe('a worker cut off from etcd', () => {
    let proxy: TcpProxy;
    let cutOff: TitanProcess | undefined;
    let other: TestWorker | undefined;
    let master: Master | undefined;
    let store: Store | undefined;
    const nodeA = `a-${randomNodeId()}`;
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-worker-state-'));

    afterAll(async () => {
      await cutOff?.kill('SIGKILL');
      await other?.stop();
      await master?.stop();
      store?.close();
      await removeContainersByLabel(docker, `titan.node=${nodeA}`);
      if (other) await removeContainersByLabel(docker, `titan.node=${other.worker.nodeId}`);
      await proxy?.cut();
      fs.rmSync(stateDir, { recursive: true, force: true });
    });

    it('kills its containers within a TTL, and its late writes are fenced once the master moved the attempt', async () => {
      proxy = await startTcpProxy(etcd.endpoints);
      const prefix = randomPrefix();
      const db = new Store({ endpoints: [etcd.endpoints], prefix });
      store = db;
      master = await startMaster(etcd.endpoints, prefix);
      cutOff = startProcess('worker A', BIN.worker, [
        '--endpoints', proxy.endpoint, '--prefix', prefix, '--node-id', nodeA, '--ttl', String(TTL_SECONDS), '--network', 'none',
        '--docker', 'on', '--cpu', '2', '--memory', '2Gi', '--gpus', 'none', '--state-dir', stateDir,
      ]);
      const worker = cutOff;
      await waitFor('worker A to register', () => db.get(db.keys.node(nodeA), records.node), 15_000);

      const job = await submitJob(db, { image: TEST_IMAGE, args: ['sleep', '60'] });
      await runningContainer(docker, job.id, 1, 15_000);
      // The node's Running report reaches the job through the master's fold.
      expect(await waitForState(db, job.id, ['Running'])).toMatchObject({ state: 'Running', node: nodeA, attempt: 1 });
      other = await startTestWorker(etcd.endpoints, { docker: 'on', prefix, nodeId: `b-${randomNodeId()}` });
      const nodeB = other.worker.nodeId;

      const cutAt = Date.now();
      await proxy.cut();
      await waitFor(
        'worker A to kill its container',
        async () => {
          const c = (await containersOf(docker, job.id)).find((x) => x.Labels['titan.attempt'] === '1');
          return c === undefined || c.State !== 'running' ? true : undefined;
        },
        TTL_SECONDS * 1000 + 3000,
      );
      const killedAfter = Date.now() - cutAt;

      // The lease lapses, the master requeues attempt 1 as lost with its node and places attempt 2 on B.
      const moved = await waitFor(
        'attempt 2 to run on worker B',
        async () => {
          const current = (await db.requireJob(job.id)).value;
          return current.attempt === 2 && current.state === 'Running' && current.node === nodeB ? current : undefined;
        },
        20_000,
      );
      const movedAfter = Date.now() - cutAt;
      expect(moved.history).toEqual([expect.objectContaining({ attempt: 1, node: nodeA, state: 'Failed', failure: 'node-lost' })]);
      await runningContainer(docker, job.id, 2);
      await waitFor('attempt 2 Running (the fold of B\'s report)', async () => {
        const j = (await db.requireJob(job.id)).value;
        return j.state === 'Running' && j.attempt === 2 ? true : undefined;
      });

      // A comes back: it registers again, and its write for attempt 1 is rejected.
      const before = await db.requireJob(job.id);
      await proxy.restore();
      await waitFor(
        'worker A to register again',
        async () => (((await db.get(db.keys.node(nodeA), records.node))?.value.registeredAt ?? 0) > cutAt ? true : undefined),
        20_000,
      );
      await waitFor(
        "worker A's write for attempt 1 to be fenced",
        async () => (/end not reported|assignment was taken from this node; recording nothing/.test(worker.output()) ? true : undefined),
        20_000,
        200,
      );
      const after = await db.requireJob(job.id);
      expect(after.modRevision).toBe(before.modRevision);
      expect(after.value).toMatchObject({ state: 'Running', attempt: 2, node: nodeB });
      expect((await db.readLogChunks(nodeA, job.id, 1)).chunks).toEqual([]);
      // Attempt 2 runs on; attempt 1's container is gone.
      expect((await containersOf(docker, job.id)).map((c) => [c.Labels['titan.attempt'], c.State])).toEqual([['2', 'running']]);
      console.log(`fencing with TTL ${TTL_SECONDS} s: container killed ${killedAfter} ms after the cut; attempt 2 running on B after ${movedAfter} ms`);
      expect(killedAfter).toBeLessThan(TTL_SECONDS * 1000 + 1000);
      expect(worker.output()).toContain('no lease keepalive for too long');
    });
  });
});
