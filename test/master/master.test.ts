import type { Lease } from 'etcd3';
import { records } from '../../pkg/store/index.js';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Master, resolveMasterConfig } from '../../internal/master/index.js';
import { buildJobSpec, newJobId, NO_CAUSES, type Assignment, type Job, type NodeInfo, type SubmitInput } from '../../pkg/model/index.js';
import { placedJob, Store } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { passPlannedAfter } from '../harness/passes.js';
import { randomPrefix, waitFor } from '../harness/wait.js';

const GiB = 2 ** 30;
let etcd: EtcdServer;

beforeAll(async () => {
  etcd = await startEtcd({ name: 'master' });
});
afterAll(async () => {
  await etcd?.stop();
});

/** A cluster under one random prefix: a store, masters, and nodes registered the way workers do. */
class TestCluster {
  readonly prefix = randomPrefix();
  readonly store = new Store({ endpoints: [etcd.endpoints], prefix: this.prefix });
  readonly masters: Master[] = [];
  private readonly leases: Lease[] = [];

  async startMaster(): Promise<Master> {
    const master = new Master(resolveMasterConfig({ endpoints: etcd.endpoints, prefix: this.prefix }, {}), pino({ level: 'warn' }));
    await master.start();
    this.masters.push(master);
    return master;
  }

  async addNode(id: string, cores: number, memGiB: number, gpus = 0): Promise<Lease> {
    const lease = this.store.client.lease(10, { autoKeepAlive: true });
    this.leases.push(lease);
    const info: NodeInfo = {
      id,
      hostname: id,
      capacity: { cpu: cores * 1000, memory: memGiB * GiB, gpuMilli: gpus * 1000 },
      gpus: Array.from({ length: gpus }, (_, index) => ({ index, uuid: `GPU-${id}-${index}`, model: 'T4', memory: 16 * GiB })),
      labels: {},
      executors: ['docker', 'shell'],
      registeredAt: Date.now(),
      version: 'test',
    };
    await this.store.putNode(info, await lease.grant());
    return lease;
  }

  async submit(input: SubmitInput & { createdAt?: number }): Promise<Job> {
    const job: Job = { ...buildJobSpec({ image: 'busybox', ...input }), id: newJobId(), state: 'Pending', createdAt: input.createdAt ?? Date.now(), attempt: 0 };
    await this.store.createJobs([job]);
    return job;
  }

  /** A 1-core job without a timeout, not yet stored. */
  smallJob(createdAt: number): Job {
    return { ...buildJobSpec({ image: 'busybox', cpu: '1' }), id: newJobId(), state: 'Pending', createdAt, attempt: 0 };
  }

  async job(id: string): Promise<Job> {
    return (await this.store.requireJob(id)).value;
  }

  async assignments(): Promise<Assignment[]> {
    return (await this.store.listAssignments()).items.map((i) => i.value);
  }

  /** Ends a job the way a worker does: a report of its end (fenced by its assignment), which the leader folds. */
  async finish(jobId: string): Promise<void> {
    const job = await this.job(jobId);
    const assignment = await this.store.get(this.store.keys.assignment(job.node ?? '', jobId), records.assignment);
    if (!assignment) throw new Error(`no assignment for ${jobId}`);
    const end = { result: { type: 'exited' as const, exitCode: 0 }, causes: NO_CAUSES, finishedAt: Date.now() };
    expect(await this.store.putReport(assignment, { jobId, attempt: assignment.value.attempt, state: 'Ended', startedAt: Date.now(), end })).toBe(true);
  }

  async close(): Promise<void> {
    await Promise.all(this.masters.map((m) => m.stop()));
    await Promise.all(this.leases.map((l) => l.revoke().catch(() => undefined)));
    this.store.close();
  }
}

/** A master that lost its campaign watches the leader key for a vacancy. */
function waitsForVacancy(master: Master): boolean {
  return !master.isLeader() && master.leadership.isStandingBy();
}

let cluster: TestCluster;
afterEach(async () => {
  await cluster?.close();
});

describe('master placement', () => {
  it('packs onto the most-allocated node and never exceeds a node', async () => {
    cluster = new TestCluster();
    await cluster.addNode('big', 8, 16);
    await cluster.addNode('small', 4, 8);
    await cluster.startMaster();
    const jobs: Job[] = [];
    for (let i = 0; i < 12; i++) jobs.push(await cluster.submit({ cpu: '1', memory: '1Gi' }));
    const placed = await waitFor('12 placements', async () => {
      const a = await cluster.assignments();
      return a.length === 12 ? a : undefined;
    });
    const perNode = (id: string) => placed.filter((a) => a.nodeId === id);
    // Most-allocated: the small node fills up first; the rest go to the big one.
    expect(perNode('small')).toHaveLength(4);
    expect(perNode('big')).toHaveLength(8);
    for (const job of jobs) {
      const j = await cluster.job(job.id);
      expect(j.state).toBe('Scheduled');
      expect(j.attempt).toBe(1);
    }
    // A 13th job fits nowhere and says so.
    const extra = await cluster.submit({ cpu: '1', memory: '1Gi' });
    const waiting = await waitFor('a reason', async () => (await cluster.job(extra.id)).reason);
    expect(waiting).toMatch(/^waiting for capacity: needs 1 cores, most free on a node is 0 cores \(2 nodes short of cpu\)/);
  });

  it('writes each assignment with the job as placed: the Scheduled job, at the revision of the job key', async () => {
    cluster = new TestCluster();
    await cluster.addNode('n1', 8, 16);
    await cluster.startMaster();
    const submitted = await cluster.submit({ cpu: '1', memory: '1Gi', env: ['A=b'], timeout: '10m' });
    const assignment = await waitFor('the placement', () => cluster.store.get(cluster.store.keys.assignment('n1', submitted.id), records.assignment));
    const stored = await cluster.store.requireJob(submitted.id);
    expect(stored.value).toMatchObject({ state: 'Scheduled', node: 'n1', attempt: 1, env: { A: 'b' } });
    expect(placedJob(assignment)).toEqual(stored.value);
    // The fields copied for the master's own accounting are still there.
    expect(assignment.value).toMatchObject({ jobId: submitted.id, nodeId: 'n1', attempt: 1, timeoutMs: 600_000 });
  });

  it('queues a job that does not fit and runs it when a job ends', async () => {
    cluster = new TestCluster();
    await cluster.addNode('n1', 2, 4);
    await cluster.startMaster();
    const [a, b, c] = [
      await cluster.submit({ cpu: '1', memory: '1Gi' }),
      await cluster.submit({ cpu: '1', memory: '1Gi' }),
      await cluster.submit({ cpu: '1', memory: '1Gi' }),
    ];
    await waitFor('two placed', async () => (await cluster.assignments()).length === 2);
    expect((await cluster.job(a.id)).state).toBe('Scheduled');
    expect((await cluster.job(b.id)).state).toBe('Scheduled');
    const reason = await waitFor('reason on the third', async () => (await cluster.job(c.id)).reason);
    expect((await cluster.job(c.id)).state).toBe('Pending');
    expect(reason).toMatch(/waiting for capacity/);
    await cluster.finish(a.id);
    await waitFor('third placed', async () => (await cluster.job(c.id)).state === 'Scheduled');
    expect((await cluster.job(c.id)).reason).toBeUndefined();
  });

  it('folds an attempt\'s claim and end with no read: the first from the assignment as placed, the end from the job as folded', async () => {
    cluster = new TestCluster();
    await cluster.addNode('n1', 2, 4);
    const master = await cluster.startMaster();
    const reads = vi.spyOn(Store.prototype, 'getJobsAndAssignments');
    try {
      const job = await cluster.submit({ cpu: '1', memory: '1Gi' });
      const assignment = await waitFor('the placement', () => cluster.store.get(cluster.store.keys.assignment('n1', job.id), records.assignment));
      // A node claims once its own watch brought the assignment, as the master's did; this test reads it directly, so it waits for the master's.
      await waitFor('the master to see the assignment', () => master.reports.holdsAttempt('n1', job.id));
      const startedAt = Date.now();
      expect(await cluster.store.claimRun(assignment, { jobId: job.id, attempt: 1, state: 'Running', startedAt })).toEqual({ outcome: 'claimed' });
      await waitFor('Running', async () => (await cluster.job(job.id)).state === 'Running');
      await cluster.finish(job.id);
      await waitFor('Succeeded', async () => (await cluster.job(job.id)).state === 'Succeeded');
      await waitFor('the assignment released', async () => (await cluster.assignments()).length === 0);
      expect((await cluster.job(job.id)).startedAt).toBe(startedAt);
      expect(reads).not.toHaveBeenCalled();
    } finally {
      reads.mockRestore();
    }
  });

  it('does not starve a big job behind a stream of small ones (backfill), and small jobs still fill the gaps', async () => {
    cluster = new TestCluster();
    await cluster.addNode('n1', 4, 8);
    await cluster.addNode('n2', 2, 8);
    const master = await cluster.startMaster();
    // Six 1-core jobs fill the cluster; each would be stopped by its timeout within 60 s.
    const first = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => cluster.submit({ cpu: '1', timeout: '60s', createdAt: i + 1 })));
    await waitFor('the cluster full', async () => (await cluster.assignments()).length === 6);
    const big = await cluster.submit({ cpu: '4', createdAt: 100 });
    // 1,000 small jobs without a timeout queue up behind it.
    const small: Job[] = [];
    for (let i = 0; i < 1000; i++) small.push(cluster.smallJob(200 + i));
    await cluster.store.createJobs(small);
    const reason = await waitFor('the big job to hold a reservation', async () => (await cluster.job(big.id)).reason?.match(/first in line: node n1 is reserved/) ? (await cluster.job(big.id)).reason : undefined);
    expect(reason).toMatch(/^waiting for capacity: needs 4 cores/);

    // A core frees on each node: n2's goes to a small job, n1's stays for the big one.
    const onNode = async (node: string): Promise<Job[]> => (await Promise.all(first.map((j) => cluster.job(j.id)))).filter((j) => j.node === node);
    const [n1First] = await onNode('n1');
    const [n2First] = await onNode('n2');
    await cluster.finish(n1First.id);
    await cluster.finish(n2First.id);
    await waitFor('a small job on n2', async () => (await cluster.assignments()).filter((a) => a.nodeId === 'n2').length === 2);
    // n1's free core is left alone by a pass that knew it was free (a job that fits nowhere asks for that pass).
    await passPlannedAfter(
      master,
      'the master to see both cores freed',
      () => master.state.nodeOf(n1First.id) === undefined && master.state.nodeOf(n2First.id) === undefined,
      () => cluster.submit({ cpu: '64', createdAt: 10_000 }),
    );
    // The snapshot holds a placement as soon as it is planned, etcd once it is committed.
    expect(master.state.allocationsOn('n1')).toHaveLength(3);
    expect((await cluster.assignments()).filter((a) => a.nodeId === 'n1')).toHaveLength(3);

    // A small job whose timeout ends before n1 is due may backfill there.
    const quick = await cluster.submit({ cpu: '1', timeout: '5s', createdAt: 5000 });
    await waitFor('the quick job backfilled onto n1', async () => (await cluster.job(quick.id)).node === 'n1');

    // n1 drains: the big job starts there, ahead of the 1,000.
    for (const j of await onNode('n1')) if (j.state === 'Scheduled') await cluster.finish(j.id);
    await cluster.finish(quick.id);
    await waitFor('the big job placed', async () => (await cluster.job(big.id)).state === 'Scheduled');
    expect((await cluster.job(big.id)).node).toBe('n1');
    const smallPlaced = (await cluster.assignments()).filter((a) => small.some((j) => j.id === a.jobId));
    expect(smallPlaced.length).toBeLessThanOrEqual(2);
  });

  it('places higher priority first, then in submission order', async () => {
    cluster = new TestCluster();
    const low = await cluster.submit({ priority: 0, cpu: '1', createdAt: 1 });
    const high = await cluster.submit({ priority: 10, cpu: '1', createdAt: 3 });
    const mid1 = await cluster.submit({ priority: 5, cpu: '1', createdAt: 2 });
    const mid2 = await cluster.submit({ priority: 5, cpu: '1', createdAt: 4 });
    await cluster.addNode('n1', 2, 4);
    await cluster.startMaster();
    await waitFor('two placed', async () => (await cluster.assignments()).length === 2);
    expect((await cluster.job(high.id)).state).toBe('Scheduled');
    expect((await cluster.job(mid1.id)).state).toBe('Scheduled');
    expect((await cluster.job(mid2.id)).state).toBe('Pending');
    expect((await cluster.job(low.id)).state).toBe('Pending');
  });

  it('keeps a job larger than every node pending, and places it when a big node joins', async () => {
    cluster = new TestCluster();
    await cluster.addNode('cpu-only', 4, 8);
    await cluster.startMaster();
    const big = await cluster.submit({ cpu: '2', memory: '4Gi', gpu: 2 });
    const reason = await waitFor('never-fits reason', async () => (await cluster.job(big.id)).reason);
    expect(reason).toBe('no registered node can ever run it: needs 2 GPUs, the largest node has 0; waiting for a larger node');
    await cluster.addNode('gpu-box', 16, 64, 4);
    await waitFor('placed on the GPU node', async () => (await cluster.job(big.id)).node === 'gpu-box');
    const j = await cluster.job(big.id);
    expect(j.gpuDevices).toEqual(['GPU-gpu-box-0', 'GPU-gpu-box-1']);
  });

  it('tells a pending job that no worker is registered', async () => {
    cluster = new TestCluster();
    await cluster.startMaster();
    const job = await cluster.submit({});
    expect(await waitFor('reason', async () => (await cluster.job(job.id)).reason)).toBe('waiting for a node: no worker is registered');
  });

  it('rebuilds its snapshot from etcd on start: a second master sees existing allocations', async () => {
    cluster = new TestCluster();
    await cluster.addNode('n1', 2, 4);
    const first = await cluster.startMaster();
    await cluster.submit({ cpu: '1' });
    await cluster.submit({ cpu: '1' });
    await waitFor('two placed', async () => (await cluster.assignments()).length === 2);
    await first.stop();
    cluster.masters.splice(0, 1);
    const third = await cluster.submit({ cpu: '1' });
    await cluster.startMaster();
    const reason = await waitFor('reason', async () => (await cluster.job(third.id)).reason);
    expect(reason).toMatch(/waiting for capacity/);
    expect(await cluster.assignments()).toHaveLength(2);
  });

  it('never places a job twice, even with two masters racing', async () => {
    cluster = new TestCluster();
    await cluster.addNode('n1', 1000, 1000);
    await cluster.startMaster();
    await cluster.startMaster();
    const jobs = await Promise.all(Array.from({ length: 200 }, () => cluster.submit({ cpu: '100m', memory: '1Mi' })));
    await waitFor('200 placed', async () => (await cluster.assignments()).length === 200, 30_000);
    for (const job of jobs) expect((await cluster.job(job.id)).attempt).toBe(1);
  });
});

describe('leadership', () => {
  it('lets one master lead; a standby takes over when the leader stops', async () => {
    cluster = new TestCluster();
    await cluster.addNode('n1', 8, 8);
    const a = await cluster.startMaster();
    await waitFor('a leads', () => a.isLeader());
    const b = await cluster.startMaster();
    const bElected: string[] = [];
    b.leadership.on('elected', (term: string) => bElected.push(term));
    await waitFor('b to lose its campaign and wait for the leader key to be free', () => waitsForVacancy(b));
    expect(b.isLeader()).toBe(false);
    expect(bElected).toEqual([]);
    await a.stop();
    cluster.masters.splice(cluster.masters.indexOf(a), 1);
    await waitFor('b leads', () => b.isLeader(), 10_000);
    expect(bElected).toHaveLength(1);
    const job = await cluster.submit({ cpu: '1' });
    await waitFor('placed by the new leader', async () => (await cluster.job(job.id)).state === 'Scheduled');
  });

  it('a standby whose leader watch starts at a compacted revision still takes over', async () => {
    cluster = new TestCluster();
    await cluster.addNode('n1', 8, 8);
    const a = await cluster.startMaster();
    await waitFor('a leads', () => a.isLeader());
    for (let i = 0; i < 5; i++) await cluster.submit({ cpu: '100m' });
    const { revision } = await cluster.store.listJobs();
    await cluster.store.client.kv.compact({ revision, physical: true });
    const b = await cluster.startMaster();
    await a.stop();
    cluster.masters.splice(cluster.masters.indexOf(a), 1);
    await waitFor('b leads', () => b.isLeader(), 10_000);
  });

  it('fences a placement written under a term that ended', async () => {
    cluster = new TestCluster();
    await cluster.addNode('n1', 8, 8);
    const store = cluster.store;
    const lease = store.client.lease(5);
    const first = await store.campaign({ id: 'old' }, await lease.grant());
    expect(first.won).toBe(true);
    await store.resign(first.term);
    const second = await store.campaign({ id: 'new' }, await lease.grant());
    expect(second.won).toBe(true);
    const job = await cluster.submit({ cpu: '1' });
    const versioned = await store.requireJob(job.id);
    const node = (await store.listNodes()).items[0];
    const placement = {
      job: versioned,
      scheduled: { ...job, state: 'Scheduled' as const, node: 'n1', attempt: 1 },
      assignment: { jobId: job.id, nodeId: 'n1', attempt: 1, resources: job.resources, gpuDevices: [], assignedAt: Date.now() },
      nodeCreateRevision: node.createRevision,
    };
    expect((await store.commitPlacements([placement], [store.leaderGuard(first.term)])).succeeded).toBe(false);
    expect((await cluster.job(job.id)).state).toBe('Pending');
    expect((await store.commitPlacements([placement], [store.leaderGuard(second.term)])).succeeded).toBe(true);
    await lease.revoke();
  });
});

describe('node loss', () => {
  // Each step waits for the job record to show the step done; one deadline per test is only a safety net. On a
  // loaded machine the leader can lose its 5 s lease and campaign again between steps: that delays a step, it
  // changes none of them.
  const SAFETY_NET_MS = 240_000;
  const deadline = (): (() => number) => {
    const at = Date.now() + SAFETY_NET_MS;
    return () => Math.max(1, at - Date.now());
  };

  it('requeues the attempts of a node whose lease ends, with history, and places them elsewhere', async () => {
    const left = deadline();
    cluster = new TestCluster();
    const doomed = await cluster.addNode('doomed', 4, 8);
    await cluster.startMaster();
    const job = await cluster.submit({ cpu: '2' });
    await waitFor('placed on doomed', async () => (await cluster.job(job.id)).node === 'doomed', left());
    await cluster.addNode('survivor', 2, 8);
    await doomed.revoke(); // the node's registration vanishes, as when its lease expires
    const moved = await waitFor('placed on survivor', async () => {
      const j = await cluster.job(job.id);
      return j.node === 'survivor' ? j : undefined;
    }, left());
    expect(moved.attempt).toBe(2);
    expect(moved.nodeLostCount).toBe(1);
    expect(moved.history).toHaveLength(1);
    expect(moved.history?.[0]).toMatchObject({ attempt: 1, node: 'doomed', state: 'Failed', failure: 'node-lost' });
    // The requeue deleted doomed's assignment in the transaction that made the job Pending, before this placement.
    const assignments = await cluster.assignments();
    expect(assignments.map((a) => a.nodeId)).toEqual(['survivor']);
  }, SAFETY_NET_MS + 30_000);

  it('fails a job once the node-lost retries are spent', async () => {
    const left = deadline();
    cluster = new TestCluster();
    await cluster.startMaster();
    const job = await cluster.submit({ cpu: '1' });
    for (let i = 1; i <= 4; i++) {
      const lease = await cluster.addNode(`n${i}`, 2, 2);
      // The only node: the job goes there as soon as the leader sees it (a node-lost requeue has no backoff).
      const placed = await waitFor(`attempt ${i} placed on n${i}`, async () => {
        const j = await cluster.job(job.id);
        return j.attempt === i && j.state === 'Scheduled' ? j : undefined;
      }, left());
      expect(placed.node).toBe(`n${i}`);
      expect(placed.nodeLostCount ?? 0).toBe(i - 1);
      await lease.revoke();
    }
    const failed = await waitFor('failed', async () => {
      const j = await cluster.job(job.id);
      return j.state === 'Failed' ? j : undefined;
    }, left());
    expect(failed.history).toHaveLength(4);
    expect(failed.history?.map((h) => h.node)).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(failed.reason).toMatch(/node n4 left/);
  }, SAFETY_NET_MS + 30_000);
});
