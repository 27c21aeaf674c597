import { DEFAULT_QUEUE, withDefaultQueue, type Queue } from '../../pkg/model/index.js';
import { createPolicy, EvictionReservations, planEvictions, planPass, type GangRestart, type PassPlacement, type Policy, type Victim } from '../scheduler/index.js';
import { ReplaySnapshot } from './replay-snapshot.js';
import { nodeViewsOf, passJobOf, type TraceJob, type TraceNode, type TracePassJob } from './trace.js';

export interface TimelineOptions {
  policy: string;
  queues: readonly Queue[];
  /** How many points of the share-over-time series to report. */
  samples?: number;
  /** Arrivals come this many times faster (durations unchanged): raises the load. */
  compress?: number;
  /** Minimum runtime of jobs that set none, as the master's --min-runtime (default 0). */
  minRuntimeMs?: number;
  /** Report every placement and eviction (large for a long trace). */
  record?: boolean;
  /** Feasible nodes scored per job (--sample-nodes; Infinity: all); absent, the master's default. */
  sampleSize?: number;
}

export interface QueueOutcome {
  name: string;
  quotaGpu: number;
  jobs: number;
  /** Jobs still waiting when the trace ends. */
  neverStarted: number;
  /** GPU held ÷ cluster GPU, averaged from the first to the last arrival, in %. */
  meanGpuSharePct: number;
  waitP50Seconds: number;
  waitP99Seconds: number;
}

export interface TimelineReport {
  policy: string;
  jobs: number;
  started: number;
  neverStarted: number;
  waitP50Seconds: number;
  waitP99Seconds: number;
  queues: QueueOutcome[];
  /** Each queue's GPU share (%) at evenly spaced times from the first to the last arrival. */
  series: { at: number; gpuSharePct: Record<string, number> }[];
  /** With `record`: every placement, in the order the master commits them (restarts after an eviction included). */
  placements?: ReplayedPlacement[];
  /** With `record`: every eviction, in order. */
  evictions?: ReplayedEviction[];
  seconds: number;
}

/** A task the replay holds: pending or running. */
interface ReplayJob extends TracePassJob {
  /** Seconds: when the task arrived, and how long a run of it takes. */
  arrivedAt: number;
  duration: number;
}

/** A placement as the master commits it: job, node and devices, in plan order. */
export interface ReplayedPlacement {
  jobId: string;
  nodeId: string;
  gpuDevices: string[];
  /** Seconds from the trace's start. */
  at: number;
}

/** An eviction the replay applied (preemption, reclaim or a gang restart). */
export interface ReplayedEviction {
  jobId: string;
  reason: string;
  at: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Passes at one instant stop after this many rounds (each round's evictions may let another pass place more). */
const MAX_ROUNDS_PER_INSTANT = 64;

/**
 * The master's scheduling step at one instant, replayed on the snapshot and
 * applied at once: planPass, its placements committed, its gang restarts,
 * then planEvictions for the jobs it left unplaced (the order of
 * Master.runPass), the evicted attempts back in the queue and their
 * preemptors' nodes held for them. Again while a
 * round evicted or was truncated: in the master, the freed capacity and the
 * requeued jobs start the next pass.
 */
class Replay {
  readonly placements: ReplayedPlacement[] = [];
  readonly evictions: ReplayedEviction[] = [];
  /** Running tasks by job id, and when each run ends (seconds). */
  readonly running = new Map<string, { job: ReplayJob; endsAt: number }>();
  /** Seconds each task waited for its first start, by queue. */
  readonly waits = new Map<string, number[]>();
  /** Nodes held for the jobs evictions were for, as the leading master holds them. */
  private readonly holds = new EvictionReservations();

  constructor(
    readonly snapshot: ReplaySnapshot<ReplayJob>,
    private readonly policy: Policy,
    private readonly queues: readonly Queue[],
    private readonly minRuntimeMs: number,
    private readonly sampleSize?: number,
  ) {}

  arrive(job: ReplayJob): void {
    this.policy.observe(job);
    this.snapshot.enqueue(job);
  }

  /** Runs that end at `now` give their resources back. */
  depart(now: number): void {
    for (const [id, r] of this.running) {
      if (r.endsAt > now) continue;
      this.snapshot.allocations.remove(id);
      this.running.delete(id);
    }
  }

  schedule(now: number): void {
    const ms = now * 1000;
    for (let round = 0; round < MAX_ROUNDS_PER_INSTANT; round++) {
      const reservations = this.holds.active(ms, this.snapshot.pending);
      const plan = planPass(this.snapshot, this.policy, { now: ms, queues: this.queues, reservations, ...(this.sampleSize === undefined ? {} : { sampleSize: this.sampleSize }) });
      for (const p of plan.placements) this.commit(p, now);
      this.stop(plan.gangRestarts, now);
      const evictions = planEvictions(this.snapshot, plan, this.queues, ms, { defaultMinRuntimeMs: this.minRuntimeMs });
      this.stop(evictions?.victims ?? [], now);
      if (evictions) this.holds.add(evictions, new Set(evictions.victims.map((v) => v.jobId)), ms, 0); // victims stop at once here
      if (!plan.truncated && !evictions && plan.gangRestarts.length === 0) return;
    }
  }

  private commit(p: PassPlacement<ReplayJob>, now: number): void {
    const job = p.job;
    this.snapshot.dequeue(job.id);
    this.placements.push({ jobId: job.id, nodeId: p.nodeId, gpuDevices: p.gpuDevices, at: now });
    if (job.attempt === 0) {
      const queue = job.queue ?? DEFAULT_QUEUE;
      const waits = this.waits.get(queue) ?? [];
      waits.push(now - job.arrivedAt);
      this.waits.set(queue, waits);
    }
    this.running.set(job.id, { job, endsAt: now + job.duration });
  }

  /** Evicted attempts stop at once and their jobs are pending again, as a worker's report of the stop requeues them. */
  private stop(victims: readonly (Victim | GangRestart)[], now: number): void {
    for (const v of victims) {
      const r = this.running.get(v.jobId);
      const a = this.snapshot.allocations.remove(v.jobId);
      if (!r || !a) continue;
      this.running.delete(v.jobId);
      this.evictions.push({ jobId: v.jobId, reason: v.reason, at: now });
      this.arrive({ ...r.job, attempt: a.attempt });
    }
  }
}

/**
 * Replays a trace in time: tasks arrive at creation_time and hold their
 * resources for deletion_time − creation_time once started. At every
 * arrival or departure the master's scheduling step runs (Replay above:
 * planPass, then planEvictions) with the queues' quotas and weights, the
 * placer and the policy. Tasks naming a queue that is not given go to the
 * default queue. Reports waiting times, each queue's GPU share over time,
 * and every placement and eviction in order.
 */
export function simulateTimeline(nodes: readonly TraceNode[], jobs: readonly TraceJob[], options: TimelineOptions): TimelineReport {
  const started = performance.now();
  const views = nodeViewsOf(nodes);
  const policy = createPolicy(options.policy);
  const queues = withDefaultQueue(options.queues);
  const known = new Set(queues.map((q) => q.name));
  const queueName = (job: TraceJob): string => (job.queue && known.has(job.queue) ? job.queue : DEFAULT_QUEUE);

  const compress = options.compress ?? 1;
  const arrivals = [...jobs]
    .map((j) => {
      const createdAt = (j.createdAt ?? 0) / compress;
      return { ...j, createdAt, deletedAt: createdAt + Math.max(1, (j.deletedAt ?? j.createdAt ?? 0) - (j.createdAt ?? 0)) };
    })
    .sort((a, b) => a.createdAt - b.createdAt || (a.name < b.name ? -1 : 1));
  // Shares are reported over the arrival window: afterwards the cluster only drains.
  const horizon = Math.max(arrivals[arrivals.length - 1]?.createdAt ?? 0, 1);
  const snapshot = new ReplaySnapshot<ReplayJob>(views);
  const capacity = snapshot.capacity();
  const replay = new Replay(snapshot, policy, options.queues, options.minRuntimeMs ?? 0, options.sampleSize);
  const gpuTime = new Map<string, number>(queues.map((q) => [q.name, 0]));
  const gpuHeld = (name: string): number => snapshot.allocatedByQueue().get(name)?.gpuMilli ?? 0;
  const samples = options.samples ?? 10;
  const series: TimelineReport['series'] = [];
  let nextSample = 0;
  let clock = 0;
  let next = 0;

  const advanceTo = (t: number): void => {
    for (const q of queues) gpuTime.set(q.name, (gpuTime.get(q.name) ?? 0) + (gpuHeld(q.name) * (t - clock)) / capacity.gpuMilli);
    while (nextSample <= samples && (nextSample * horizon) / samples <= t) {
      const at = (nextSample * horizon) / samples;
      series.push({ at, gpuSharePct: Object.fromEntries(queues.map((q) => [q.name, (100 * gpuHeld(q.name)) / capacity.gpuMilli])) });
      nextSample++;
    }
    clock = t;
  };

  while (next < arrivals.length || replay.running.size > 0) {
    const nextArrival = next < arrivals.length ? arrivals[next].createdAt : Infinity;
    let nextDeparture = Infinity;
    for (const r of replay.running.values()) nextDeparture = Math.min(nextDeparture, r.endsAt);
    const now = Math.min(nextArrival, nextDeparture);
    if (now === Infinity) break;
    if (now <= horizon) advanceTo(now);
    else if (clock < horizon) advanceTo(horizon);
    replay.depart(now);
    while (next < arrivals.length && arrivals[next].createdAt === now) {
      const task = arrivals[next++];
      const queue = queueName(task);
      const job = passJobOf(task, now * 1000, queue === DEFAULT_QUEUE ? undefined : queue);
      replay.arrive({ ...job, arrivedAt: now, duration: task.deletedAt - task.createdAt });
    }
    replay.schedule(now);
  }
  if (clock < horizon) advanceTo(horizon);

  const allWaits = [...replay.waits.values()].flat().sort((a, b) => a - b);
  const outcomes: QueueOutcome[] = queues.map((q) => {
    const w = (replay.waits.get(q.name) ?? []).sort((a, b) => a - b);
    const submitted = jobs.filter((j) => queueName(j) === q.name).length;
    return {
      name: q.name,
      quotaGpu: q.quota.gpuMilli / 1000,
      jobs: submitted,
      neverStarted: submitted - w.length,
      meanGpuSharePct: (100 * (gpuTime.get(q.name) ?? 0)) / horizon,
      waitP50Seconds: percentile(w, 50),
      waitP99Seconds: percentile(w, 99),
    };
  });
  return {
    policy: policy.name,
    jobs: jobs.length,
    started: allWaits.length,
    neverStarted: jobs.length - allWaits.length,
    waitP50Seconds: percentile(allWaits, 50),
    waitP99Seconds: percentile(allWaits, 99),
    queues: outcomes,
    series,
    ...(options.record ? { placements: replay.placements, evictions: replay.evictions } : {}),
    seconds: (performance.now() - started) / 1000,
  };
}
