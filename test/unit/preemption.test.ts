import { describe, expect, it } from 'vitest';
import { buildJobSpec, type GpuDevice, type Resources } from '../../pkg/model/index.js';
import { planSubmission } from '../../internal/cli/submit.js';
import {
  allocate,
  newNodeView,
  planPreemption,
  Preemptor,
  type NodeView,
  type PreemptionQueue,
  type PreemptorJob,
  type RunningJob,
} from '../../internal/scheduler/index.js';

const GI = 2 ** 30;
const ZERO: Resources = { cpu: 0, memory: 0, gpuMilli: 0 };
/** A GPU job's request: 1 CPU and 4 GiB per GPU. */
const gpuJob = (n: number): Resources => ({ cpu: 1000 * Math.max(1, n), memory: 4 * GI * Math.max(1, n), gpuMilli: 1000 * n });
const gpuQuota = (n: number): Resources => ({ ...ZERO, gpuMilli: 1000 * n });
const NOW = 1_000_000;

const devices = (node: string, n = 4): GpuDevice[] =>
  Array.from({ length: n }, (_, i) => ({ index: i, uuid: `${node}-gpu${i}`, model: 'V100', memory: 0 }));

/** Nodes of 16 CPUs, 64 GiB and 4 GPUs, with the running jobs already allocated on them (as the master's snapshot). */
function cluster(nodeIds: string[], running: RunningJob[]): NodeView[] {
  const views = nodeIds.map((id) =>
    newNodeView({ id, capacity: { cpu: 16_000, memory: 64 * GI, gpuMilli: 4000 }, gpus: devices(id), labels: {}, executors: ['shell', 'docker'] }),
  );
  for (const r of running) {
    const view = views.find((v) => v.id === r.nodeId);
    if (view) allocate(view, r.resources, r.gpuDevices);
  }
  return views;
}

/** One running 1-GPU (or n-GPU) job on a node's device(s), started at `startedAt`. */
function running(jobId: string, nodeId: string, gpuIndexes: number[], fields: Partial<RunningJob> = {}): RunningJob {
  return {
    jobId,
    nodeId,
    resources: gpuJob(gpuIndexes.length),
    gpuDevices: gpuIndexes.map((i) => `${nodeId}-gpu${i}`),
    priority: 0,
    startedAt: NOW - 10_000,
    ...fields,
  };
}

const pending = (fields: Partial<PreemptorJob> = {}): PreemptorJob => ({ id: 'P', kind: 'shell', resources: gpuJob(1), priority: 0, ...fields });
const queue = (name: string, quotaGpus: number, fields: Partial<PreemptionQueue> = {}): PreemptionQueue => ({ name, quota: gpuQuota(quotaGpus), ...fields });

/** Queue a (no quota) fills two 4-GPU nodes, one GPU job each; job i started at NOW - 1000 * (9 - i): a8 is the newest. */
function borrowedCluster(extra: Partial<RunningJob> = {}): RunningJob[] {
  const out: RunningJob[] = [];
  for (let i = 1; i <= 8; i++) {
    out.push(running(`a${i}`, i <= 4 ? 'n1' : 'n2', [(i - 1) % 4], { queue: 'a', startedAt: NOW - 1000 * (9 - i), ...extra }));
  }
  return out;
}

describe('planPreemption: reclaim', () => {
  it('evicts the newest attempt of an over-quota queue for a queue below its quota', () => {
    const run = borrowedCluster();
    const plan = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues: [queue('a', 0), queue('b', 4)], job: pending({ queue: 'b' }), now: NOW });
    expect(plan).toEqual({
      kind: 'evict',
      mode: 'reclaim',
      nodeId: 'n2',
      victims: [{ jobId: 'a8', nodeId: 'n2', reason: 'Reclaimed by queue b' }],
      freedNodes: ['n2'],
    });
  });

  it('takes the lowest priority first among attempts of the same age, and passes the attempt on', () => {
    const run = borrowedCluster({ startedAt: NOW - 5000 }).map((r) => ({ ...r, priority: r.jobId === 'a3' ? -1 : 0, attempt: 2 }));
    const plan = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues: [queue('b', 2)], job: pending({ queue: 'b' }), now: NOW });
    expect(plan).toMatchObject({ kind: 'evict', victims: [{ jobId: 'a3', nodeId: 'n1', attempt: 2 }] });
  });

  it('only reclaims what the queue is guaranteed: a job that would take its queue over quota reclaims nothing', () => {
    const run = [...borrowedCluster().slice(0, 6), running('b1', 'n2', [2], { queue: 'b' }), running('b2', 'n2', [3], { queue: 'b' })];
    const plan = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues: [queue('a', 0), queue('b', 2)], job: pending({ queue: 'b' }), now: NOW });
    expect(plan.kind).toBe('none');
  });

  it('never takes a queue below its quota: a queue within quota cannot be reclaimed from', () => {
    // a holds 4 GPUs with quota 4 (within quota); c borrows 4 GPUs with no quota.
    const run = [
      ...[0, 1, 2, 3].map((i) => running(`a${i}`, 'n1', [i], { queue: 'a', startedAt: NOW - 100 })),
      ...[0, 1, 2, 3].map((i) => running(`c${i}`, 'n2', [i], { queue: 'c', startedAt: NOW - 5000 })),
    ];
    const queues = [queue('a', 4), queue('b', 4), queue('c', 0)];
    const plan = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues, job: pending({ queue: 'b' }), now: NOW });
    // a's jobs are newer, but only c's are borrowed.
    expect(plan).toMatchObject({ kind: 'evict', nodeId: 'n2', victims: [{ jobId: 'c3' }] });

    const onlyA = run.slice(0, 4);
    const none = planPreemption({ nodes: cluster(['n1'], onlyA), running: onlyA, queues, job: pending({ queue: 'b' }), now: NOW });
    expect(none.kind).toBe('none');
  });

  it('leaves a queue at its quota: it gives back only what it holds beyond it', () => {
    // a (quota 6) holds 8: two of its jobs may go, not a third.
    const run = borrowedCluster();
    const queues = [queue('a', 6), queue('b', 4)];
    const pass = new Preemptor(cluster(['n1', 'n2'], run), run, queues);
    const first = pass.plan(pending({ id: 'P1', queue: 'b' }), NOW);
    const second = pass.plan(pending({ id: 'P2', queue: 'b' }), NOW);
    const third = pass.plan(pending({ id: 'P3', queue: 'b' }), NOW);
    expect(first).toMatchObject({ kind: 'evict', victims: [{ jobId: 'a8' }] });
    expect(second).toMatchObject({ kind: 'evict', victims: [{ jobId: 'a7' }] });
    expect(third.kind).toBe('none');
    expect([...pass.evicted]).toEqual(['a8', 'a7']);
    expect([...pass.freedNodes]).toEqual(['n2']);
  });

  it('never evicts for nothing: no set that makes room means no victims at all', () => {
    // n1: two borrowed GPUs of a, two GPUs of c within its quota. The pending job needs 3 GPUs on one node.
    const run = [
      running('a1', 'n1', [0], { queue: 'a' }),
      running('a2', 'n1', [1], { queue: 'a' }),
      running('c1', 'n1', [2], { queue: 'c' }),
      running('c2', 'n1', [3], { queue: 'c' }),
    ];
    const queues = [queue('a', 0), queue('b', 4), queue('c', 2)];
    const plan = planPreemption({ nodes: cluster(['n1'], run), running: run, queues, job: pending({ queue: 'b', resources: gpuJob(3) }), now: NOW });
    expect(plan.kind).toBe('none');
    // A job no node could ever hold evicts nothing either.
    const huge = planPreemption({ nodes: cluster(['n1'], run), running: run, queues, job: pending({ queue: 'b', resources: gpuJob(8) }), now: NOW });
    expect(huge).toEqual({ kind: 'none', reason: 'no node could ever run it' });
  });

  it('keeps victims the job does not need running (a newer CPU-only job does not free a GPU)', () => {
    const cpuOnly: Resources = { cpu: 1000, memory: GI, gpuMilli: 0 };
    const run = [
      ...[0, 1, 2, 3].map((i) => running(`a${i}`, 'n1', [i], { queue: 'a', startedAt: NOW - 5000 + i })),
      { ...running('cpu', 'n1', [], { queue: 'a', startedAt: NOW - 10 }), resources: cpuOnly },
    ];
    const plan = planPreemption({ nodes: cluster(['n1'], run), running: run, queues: [queue('b', 1)], job: pending({ queue: 'b' }), now: NOW });
    expect(plan).toMatchObject({ kind: 'evict', victims: [{ jobId: 'a3' }] });
  });

  it('respects the minimum runtime: just-started attempts are not victims', () => {
    // Every job asks for 5 s; a5..a8 (on n2) started less than 5 s ago.
    const run = borrowedCluster().map((r) => ({ ...r, minRuntimeMs: 5000 }));
    const queues = [queue('b', 4)];
    const plan = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues, job: pending({ queue: 'b' }), now: NOW });
    expect(plan).toMatchObject({ kind: 'evict', nodeId: 'n1', victims: [{ jobId: 'a4' }] });
    // The cluster's default applies to jobs that set none.
    const young = borrowedCluster();
    const none = planPreemption({
      nodes: cluster(['n1', 'n2'], young), running: young, queues, job: pending({ queue: 'b' }), now: NOW, options: { defaultMinRuntimeMs: 60_000 },
    });
    expect(none.kind).toBe('none');
  });

  it('never evicts an attempt submitted as not preemptible', () => {
    const run = borrowedCluster().map((r) => ({ ...r, preemptible: r.jobId !== 'a8' ? undefined : false }));
    const plan = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues: [queue('b', 4)], job: pending({ queue: 'b' }), now: NOW });
    expect(plan).toMatchObject({ kind: 'evict', victims: [{ jobId: 'a7' }] });
  });

  it('a multi-GPU job gets all its victims on one node', () => {
    // n1: a1 (borrowed, newest) and three GPUs of c within quota; n2: four borrowed GPUs of a.
    const run = [
      running('a1', 'n1', [0], { queue: 'a', startedAt: NOW - 100 }),
      ...[1, 2, 3].map((i) => running(`c${i}`, 'n1', [i], { queue: 'c' })),
      ...[0, 1, 2, 3].map((i) => running(`a${i + 2}`, 'n2', [i], { queue: 'a', startedAt: NOW - 5000 + i })),
    ];
    const queues = [queue('a', 0), queue('b', 4), queue('c', 3)];
    const plan = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues, job: pending({ queue: 'b', resources: gpuJob(2) }), now: NOW });
    expect(plan).toMatchObject({ kind: 'evict', nodeId: 'n2' });
    if (plan.kind !== 'evict') throw new Error('expected evictions');
    expect(plan.victims.map((v) => v.jobId)).toEqual(['a5', 'a4']);
    expect(plan.victims.every((v) => v.nodeId === 'n2')).toBe(true);
  });

  it('lets a team reclaim from its sibling inside a department at its quota, not from another department', () => {
    const queues = [queue('dept', 4), queue('t1', 2, { parent: 'dept' }), queue('t2', 2, { parent: 'dept' }), queue('other', 0)];
    // t2 borrows all 4 GPUs of the department's quota on n1; other borrows n2.
    const run = [
      ...[0, 1, 2, 3].map((i) => running(`t${i}`, 'n1', [i], { queue: 't2', startedAt: NOW - 5000 })),
      ...[0, 1, 2, 3].map((i) => running(`o${i}`, 'n2', [i], { queue: 'other', startedAt: NOW - 100 })),
    ];
    const plan = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues, job: pending({ queue: 't1' }), now: NOW });
    // other's jobs are newer, but the department is at its quota: t1 takes from t2.
    expect(plan).toMatchObject({ kind: 'evict', nodeId: 'n1', victims: [{ jobId: 't3', reason: 'Reclaimed by queue t1' }] });
  });

  it('waits instead of evicting more while earlier evictions already make room', () => {
    const run = borrowedCluster().map((r) => (r.jobId === 'a8' ? { ...r, evicting: true } : r));
    const pass = new Preemptor(cluster(['n1', 'n2'], run), run, [queue('b', 4)]);
    expect(pass.plan(pending({ id: 'P1', queue: 'b' }), NOW)).toEqual({ kind: 'wait', nodeId: 'n2' });
    // The room a8 leaves is P1's: the next job needs an eviction of its own.
    expect(pass.plan(pending({ id: 'P2', queue: 'b' }), NOW)).toMatchObject({ kind: 'evict', victims: [{ jobId: 'a7' }] });
  });
});

describe('planPreemption: priority preemption inside a queue', () => {
  it('evicts a lower-priority attempt of the same queue while the queue is over quota', () => {
    const run = borrowedCluster();
    const plan = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues: [queue('a', 0)], job: pending({ id: 'P', queue: 'a', priority: 5 }), now: NOW });
    expect(plan).toMatchObject({ kind: 'evict', mode: 'preempt', victims: [{ jobId: 'a8', reason: 'Preempted by job P' }] });
  });

  it('never evicts equal or higher priority, nor other queues\' jobs', () => {
    const run = borrowedCluster();
    const queues = [queue('a', 0), queue('b', 0)];
    const same = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues, job: pending({ queue: 'a', priority: 0 }), now: NOW });
    expect(same.kind).toBe('none');
    // b has no quota (so no reclaim) and a's jobs are not b's to preempt.
    const other = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues, job: pending({ queue: 'b', priority: 9 }), now: NOW });
    expect(other.kind).toBe('none');
  });

  it('protects attempts within quota unless they were submitted preemptible', () => {
    // a's quota covers all 8 GPUs: its jobs run within quota.
    const run = borrowedCluster();
    const job = pending({ queue: 'a', priority: 5 });
    const plan = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues: [queue('a', 8)], job, now: NOW });
    expect(plan.kind).toBe('none');
    const marked = run.map((r) => (r.jobId === 'a2' ? { ...r, preemptible: true } : r));
    const preempted = planPreemption({ nodes: cluster(['n1', 'n2'], marked), running: marked, queues: [queue('a', 8)], job, now: NOW });
    expect(preempted).toMatchObject({ kind: 'evict', mode: 'preempt', nodeId: 'n1', victims: [{ jobId: 'a2' }] });
  });

  it('prefers the lowest-priority victims, on the node that needs the fewest', () => {
    const run = borrowedCluster().map((r) => ({ ...r, priority: r.jobId === 'a2' ? 1 : 3 }));
    const plan = planPreemption({ nodes: cluster(['n1', 'n2'], run), running: run, queues: [queue('a', 0)], job: pending({ queue: 'a', priority: 5 }), now: NOW });
    expect(plan).toMatchObject({ kind: 'evict', nodeId: 'n1', victims: [{ jobId: 'a2' }] });
  });
});

describe('submit: preemptible and min-runtime', () => {
  it('parses the flags and spec-file fields, leaving them absent when not given', () => {
    expect(buildJobSpec({ shell: 'true' })).not.toHaveProperty('preemptible');
    expect(buildJobSpec({ shell: 'true' })).not.toHaveProperty('minRuntimeMs');
    expect(buildJobSpec({ shell: 'true', preemptible: true, minRuntime: '10m' })).toMatchObject({ preemptible: true, minRuntimeMs: 600_000 });
    expect(buildJobSpec({ shell: 'true', preemptible: 'false', minRuntime: 30 })).toMatchObject({ preemptible: false, minRuntimeMs: 30_000 });
    expect(() => buildJobSpec({ shell: 'true', preemptible: 'maybe' })).toThrow(/preemptible/);
    expect(() => buildJobSpec({ shell: 'true', minRuntime: 'soon' })).toThrow(/minRuntime/);
    const [job] = planSubmission({ shell: 'true', preemptible: false, minRuntime: '1h' }).jobs;
    expect(job).toMatchObject({ preemptible: false, minRuntimeMs: 3_600_000 });
    const [fromFile] = planSubmission({ file: 'job.yaml' }, { readText: () => 'shell: "true"\npreemptible: true\nminRuntime: 90s\n' }).jobs;
    expect(fromFile).toMatchObject({ preemptible: true, minRuntimeMs: 90_000 });
  });
});
