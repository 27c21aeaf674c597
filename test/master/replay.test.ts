import type { Lease } from 'etcd3';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Master, resolveMasterConfig } from '../../internal/master/index.js';
import { DEFAULT_POLICY } from '../../internal/scheduler/index.js';
import { simulateTimeline } from '../../internal/simulate/timeline.js';
import type { TraceJob, TraceNode } from '../../internal/simulate/trace.js';
import { buildJobSpec, buildQueue, newJobId, NO_CAUSES, type Assignment, type Job, type SubmitInput } from '../../pkg/model/index.js';
import { records, Store, type Versioned } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { randomPrefix, waitFor } from '../harness/wait.js';
import { answeredNode, reportEnd } from './answered-node.js';

/**
 * One small trace replayed twice: through a real master on real etcd, with
 * nodes registered as workers register (no Docker: this test answers for
 * them), and through `titan simulate --time` (simulateTimeline). Both must
 * place the same jobs on the same nodes and devices, in the same order, and
 * evict the same job: the simulator runs the master's scheduling pass.
 *
 * Time is the trace's second t; the master's jobs are created at t × 1000 ms
 * so both sides order the queue alike. The master commits one placement per
 * transaction, one transaction at a time, so etcd's revisions give its order.
 */

const GiB = 2 ** 30;
const NODES = ['n1', 'n2'];
const GPUS_PER_NODE = 4;
const QUEUES = [buildQueue('a', { weight: '2' }, undefined, 0), buildQueue('b', {}, undefined, 0)];
const LONG = 1000;

interface TraceEntry {
  input: SubmitInput;
  /** Seconds: arrival, and the end of its run if it starts at once. */
  at: number;
  endsAt: number;
}

let etcd: EtcdServer;
beforeAll(async () => {
  etcd = await startEtcd({ name: 'replay' });
});
afterAll(async () => {
  await etcd?.stop();
});

const traceNodes: TraceNode[] = NODES.map((id) => ({ id, cpu: 32_000, memory: 128 * GiB, gpus: GPUS_PER_NODE, model: 'T4' }));

/** Jobs of the trace with the ids, specs and creation times both sides use. */
function buildTrace(entries: TraceEntry[]): { job: Job; entry: TraceEntry }[] {
  return entries.map((entry) => {
    const spec = buildJobSpec({ image: 'busybox', cpu: '1', memory: '1Gi', ...entry.input });
    const id = newJobId();
    return { job: { ...spec, id, name: id, state: 'Pending', createdAt: entry.at * 1000, attempt: 0 }, entry };
  });
}

/** A gang of `size` 1-GPU replicas in queue b: rank 0's id is the gang id. */
function gang(size: number, at: number): { job: Job; entry: TraceEntry }[] {
  const gangId = newJobId();
  return Array.from({ length: size }, (_, rank) => {
    const spec = buildJobSpec({ image: 'busybox', cpu: '1', memory: '1Gi', gpu: 1, queue: 'b' });
    const id = rank === 0 ? gangId : newJobId();
    const job: Job = { ...spec, id, name: id, state: 'Pending', createdAt: at * 1000, attempt: 0, gang: { id: gangId, rank, size, minAvailable: size } };
    return { job, entry: { input: {}, at, endsAt: LONG } };
  });
}

function traceJobOf({ job, entry }: { job: Job; entry: TraceEntry }): TraceJob {
  return {
    id: job.id,
    name: job.name,
    kind: job.kind,
    resources: job.resources,
    ...(job.queue ? { queue: job.queue } : {}),
    priority: job.priority,
    ...(job.preemptible !== undefined ? { preemptible: job.preemptible } : {}),
    ...(job.gang ? { gang: job.gang } : {}),
    createdAt: entry.at,
    deletedAt: entry.endsAt,
  };
}

interface Seen {
  jobId: string;
  nodeId: string;
  gpuDevices: string[];
  revision: number;
  rank: number;
}

describe('the simulator replays what the master does', () => {
  it('places a trace with queues, a gang and a preemption as the master does, in the same order', async () => {
    const prefix = randomPrefix();
    const store = new Store({ endpoints: [etcd.endpoints], prefix });
    const leases: Lease[] = [];
    let master: Master | undefined;
    try {
      // t=1: queue a (weight 2) and queue b (weight 1) fill the 8 GPUs; a's jobs may be preempted.
      const first = [
        ...buildTrace([
          { input: { gpu: 2, queue: 'a', preemptible: true }, at: 1, endsAt: LONG },
          { input: { gpu: 2, queue: 'a', preemptible: true }, at: 1, endsAt: LONG },
          { input: { gpu: 2, queue: 'b' }, at: 1, endsAt: 3 },
        ]),
        ...gang(2, 1),
      ];
      // t=2: a high-priority job of queue a fits nowhere: it preempts one of a's jobs.
      const [urgent] = buildTrace([{ input: { gpu: 2, queue: 'a', priority: 10 }, at: 2, endsAt: LONG }]);
      // t=3: queue b's 2-GPU job ends (it ran 2 s): the preempted job runs again there.
      const ending = first[2].job;
      const trace = [...first, urgent];

      // ---- the simulator -----------------------------------------------------
      const report = simulateTimeline(traceNodes, trace.map(traceJobOf), { policy: DEFAULT_POLICY, queues: QUEUES, record: true });
      const simulated = byGang(
        (report.placements ?? []).map((p) => ({ ...p, rank: trace.find((t) => t.job.id === p.jobId)?.job.gang?.rank ?? 0 })),
        trace.map((t) => t.job),
      );
      expect(report.evictions).toHaveLength(1);

      // ---- the master ---------------------------------------------------------
      for (const q of QUEUES) await store.createQueue(q);
      for (const id of NODES) {
        const lease = store.client.lease(10, { autoKeepAlive: true });
        leases.push(lease);
        await store.putNode(answeredNode(id, GPUS_PER_NODE), await lease.grant());
      }
      master = new Master(
        resolveMasterConfig({ endpoints: etcd.endpoints, prefix, commitBatch: '1', commitConcurrency: '1' }, {}),
        pino({ level: 'warn' }),
      );
      await master.start();
      const leader = master;
      await waitFor('leadership', () => leader.isLeader());

      const seen = new Map<string, Seen>();
      const record = async (): Promise<Versioned<Assignment>[]> => {
        const items = (await store.listAssignments()).items;
        for (const a of items) {
          const key = `${a.value.jobId}#${a.value.attempt}`;
          if (!seen.has(key)) {
            const rank = trace.find((t) => t.job.id === a.value.jobId)?.job.gang?.rank ?? 0;
            seen.set(key, { jobId: a.value.jobId, nodeId: a.value.nodeId, gpuDevices: a.value.gpuDevices, revision: Number(a.createRevision), rank });
          }
        }
        return items;
      };
      // Scheduled first, then the assignments: the placement writes both in one transaction, so a job seen
      // Scheduled has its assignment listed after (listed first, one committed in between would be missed).
      const scheduled = async (jobId: string): Promise<boolean> => {
        const done = (await store.requireJob(jobId)).value.state === 'Scheduled';
        await record();
        return done;
      };

      // t=1: one transaction of jobs, so one pass sees them all (as the simulator's instant does).
      await store.createJobs(first.map((t) => t.job));
      await waitFor('the first jobs placed', async () => (await record()).length === first.length);

      // t=2: the urgent job; the master evicts; this test, as the victim's worker, reports the stop.
      await store.createJobs([urgent.job]);
      const victim = await waitFor('an eviction', async () => (await record()).find((a) => a.value.evict !== undefined));
      await reportEnd(store, victim, { ...NO_CAUSES, evicted: victim.value.evict?.reason ?? '' });
      await waitFor('the urgent job placed', () => scheduled(urgent.job.id));

      // t=3: the 2-GPU job of queue b ends; the evicted job is placed again.
      const ended = await store.get(store.keys.assignment((await store.requireJob(ending.id)).value.node ?? '', ending.id), records.assignment);
      if (!ended) throw new Error('the ending job holds no assignment');
      await reportEnd(store, ended, NO_CAUSES);
      await waitFor('the evicted job placed again', () => scheduled(victim.value.jobId));

      const ordered = [...seen.values()].sort((x, y) => x.revision - y.revision || x.rank - y.rank);
      const placedByMaster = ordered.map(({ jobId, nodeId, gpuDevices }) => ({ jobId, nodeId, gpuDevices }));
      expect(placedByMaster).toHaveLength(first.length + 2);
      expect(placedByMaster).toEqual(simulated.map(({ jobId, nodeId, gpuDevices }) => ({ jobId, nodeId, gpuDevices })));
      expect(report.evictions?.[0]).toMatchObject({ jobId: victim.value.jobId, reason: victim.value.evict?.reason });
    } finally {
      await master?.stop();
      await Promise.all(leases.map((l) => l.revoke().catch(() => undefined)));
      store.close();
    }
  });
});

/** A gang's placements commit in one transaction: both sides list its replicas by rank. */
function byGang<T extends { jobId: string; rank: number }>(list: T[], jobs: readonly Job[]): T[] {
  const gangOf = new Map(jobs.map((j) => [j.id, j.gang?.id]));
  const out: T[] = [];
  for (let i = 0; i < list.length; ) {
    const g = gangOf.get(list[i].jobId);
    let end = i + 1;
    if (g !== undefined) while (end < list.length && gangOf.get(list[end].jobId) === g) end++;
    out.push(...list.slice(i, end).sort((x, y) => x.rank - y.rank));
    i = end;
  }
  return out;
}
