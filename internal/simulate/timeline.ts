import { addResources, subtractResources, withDefaultQueue, ZERO_RESOURCES, type Queue, type Resources } from '../../pkg/model/index.js';
import {
  allocate,
  createPolicy,
  fairShares,
  FairShareOrder,
  isPlaced,
  PassPlacer,
  release,
  type JobRequest,
  type QueueState,
} from '../scheduler/index.js';
import { nodeViewsOf, type TraceJob, type TraceNode } from './trace.js';

export interface TimelineOptions {
  policy: string;
  queues: readonly Queue[];
  /** How many points of the share-over-time series to report. */
  samples?: number;
  /** Arrivals come this many times faster (durations unchanged): raises the load. */
  compress?: number;
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
  seconds: number;
}

interface Running {
  job: TraceJob;
  nodeIndex: number;
  gpuDevices: string[];
  endsAt: number;
}

type PendingJob = TraceJob & { priority: number; createdAt: number; arrivedAt: number };

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * Replays a trace in time: tasks arrive at creation_time and hold their
 * resources for deletion_time − creation_time once started. At every
 * arrival or departure the pending tasks are offered in fair-share order
 * (queues with their quotas and weights, as the master orders them) to the
 * master's placer and policy. Reports waiting times and each queue's GPU
 * share over time.
 */
export function simulateTimeline(nodes: readonly TraceNode[], jobs: readonly TraceJob[], options: TimelineOptions): TimelineReport {
  const started = performance.now();
  const views = nodeViewsOf(nodes);
  const index = new Map(views.map((v, i) => [v.id, i]));
  const capacity = views.reduce<Resources>((sum, v) => addResources(sum, v.capacity), { ...ZERO_RESOURCES });
  const policy = createPolicy(options.policy);
  const queues = withDefaultQueue(options.queues);
  const known = new Set(queues.map((q) => q.name));
  const queueName = (job: TraceJob): string => (job.queue && known.has(job.queue) ? job.queue : 'default');

  const compress = options.compress ?? 1;
  const arrivals = [...jobs]
    .map((j) => {
      const createdAt = (j.createdAt ?? 0) / compress;
      return { ...j, createdAt, deletedAt: createdAt + Math.max(1, (j.deletedAt ?? j.createdAt ?? 0) - (j.createdAt ?? 0)) };
    })
    .sort((a, b) => a.createdAt - b.createdAt || (a.name < b.name ? -1 : 1));
  // Shares are reported over the arrival window: afterwards the cluster only drains.
  const horizon = Math.max(arrivals[arrivals.length - 1]?.createdAt ?? 0, 1);
  const pending = new Map<string, PendingJob>();
  const running: Running[] = [];
  const allocated = new Map<string, Resources>(queues.map((q) => [q.name, { ...ZERO_RESOURCES }]));
  const waits = new Map<string, number[]>(queues.map((q) => [q.name, []]));
  const gpuTime = new Map<string, number>(queues.map((q) => [q.name, 0]));
  const samples = options.samples ?? 10;
  const series: TimelineReport['series'] = [];
  let nextSample = 0;
  let clock = 0;
  let next = 0;

  const advanceTo = (t: number): void => {
    for (const [name, a] of allocated) gpuTime.set(name, (gpuTime.get(name) ?? 0) + (a.gpuMilli * (t - clock)) / capacity.gpuMilli);
    while (nextSample <= samples && (nextSample * horizon) / samples <= t) {
      const at = (nextSample * horizon) / samples;
      series.push({ at, gpuSharePct: Object.fromEntries([...allocated].map(([n, a]) => [n, (100 * a.gpuMilli) / capacity.gpuMilli])) });
      nextSample++;
    }
    clock = t;
  };

  const schedule = (now: number): void => {
    const demands = queues.map((q) => {
      let demand = { ...(allocated.get(q.name) ?? ZERO_RESOURCES) };
      for (const j of pending.values()) if (queueName(j) === q.name) demand = addResources(demand, j.resources);
      return { name: q.name, ...(q.parent ? { parent: q.parent } : {}), quota: q.quota, ...(q.limit ? { limit: q.limit } : {}), weight: q.weight, demand };
    });
    const shares = fairShares(capacity, demands);
    const states: QueueState[] = queues.map((q) => ({
      name: q.name,
      ...(q.parent ? { parent: q.parent } : {}),
      quota: q.quota,
      ...(q.limit ? { limit: q.limit } : {}),
      weight: q.weight,
      allocated: allocated.get(q.name) ?? { ...ZERO_RESOURCES },
      fairShare: shares.get(q.name) ?? { ...ZERO_RESOURCES },
    }));
    const order = new FairShareOrder(capacity, states, [...pending.values()].map((j) => ({ ...j, queue: queueName(j) })));
    const placer = new PassPlacer(views, policy);
    for (let job = order.next(); job; job = order.next()) {
      const result = placer.place(job as JobRequest);
      if (!isPlaced(result)) continue;
      const nodeIndex = index.get(result.nodeId) as number;
      allocate(views[nodeIndex], job.resources, result.gpuDevices);
      order.placed(job);
      const queue = queueName(job);
      allocated.set(queue, addResources(allocated.get(queue) ?? { ...ZERO_RESOURCES }, job.resources));
      waits.get(queue)?.push(now - job.arrivedAt);
      pending.delete(job.id);
      const duration = (job.deletedAt ?? 0) - (job.createdAt ?? 0);
      running.push({ job, nodeIndex, gpuDevices: result.gpuDevices, endsAt: now + duration });
    }
  };

  while (next < arrivals.length || running.length > 0) {
    const nextArrival = next < arrivals.length ? arrivals[next].createdAt : Infinity;
    const nextDeparture = running.reduce((m, r) => Math.min(m, r.endsAt), Infinity);
    const now = Math.min(nextArrival, nextDeparture);
    if (now === Infinity) break;
    if (now <= horizon) advanceTo(now);
    else if (clock < horizon) advanceTo(horizon);
    for (let i = running.length - 1; i >= 0; i--) {
      const r = running[i];
      if (r.endsAt > now) continue;
      release(views[r.nodeIndex], r.job.resources, r.gpuDevices);
      const queue = queueName(r.job);
      allocated.set(queue, subtractResources(allocated.get(queue) as Resources, r.job.resources));
      running.splice(i, 1);
    }
    while (next < arrivals.length && arrivals[next].createdAt === now) {
      const job = arrivals[next++];
      policy.observe(job);
      pending.set(job.id, { ...job, priority: 0, arrivedAt: now });
    }
    schedule(now);
  }
  if (clock < horizon) advanceTo(horizon);

  const allWaits = [...waits.values()].flat().sort((a, b) => a - b);
  const outcomes: QueueOutcome[] = queues.map((q) => {
    const w = (waits.get(q.name) ?? []).sort((a, b) => a - b);
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
    seconds: (performance.now() - started) / 1000,
  };
}
