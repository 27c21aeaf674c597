import { addResources, DEFAULT_QUEUE, queueOf, withDefaultQueue, ZERO_RESOURCES, type Queue, type Resources } from '../../pkg/model/index.js';
import { fairShares, type QueueDemand, type QueueState } from './fair-share.js';
import { FairShareOrder, type QueuedJob } from './queue-order.js';

/** The order of one pass's pending jobs, and what to tell it about each placement. */
export interface PassOrder<J> {
  jobs: Iterable<J>;
  placed(job: J): void;
  /** Jobs not offered because their queue is at its limit. */
  overLimit(): readonly J[];
}

/** Whether queues can change anything: more than the default queue in play, or a default queue with a limit. */
function queuesMatter(queues: readonly Queue[], pending: Iterable<QueuedJob>): boolean {
  if (queues.some((q) => q.name === DEFAULT_QUEUE && q.limit !== undefined)) return true;
  for (const job of pending) if (queueOf(job) !== DEFAULT_QUEUE) return true;
  return false;
}

/** A queue's parameters as fair-share computations take them. */
const param = (q: Queue): Omit<QueueDemand, 'demand'> => ({
  name: q.name,
  ...(q.parent ? { parent: q.parent } : {}),
  quota: q.quota,
  ...(q.limit ? { limit: q.limit } : {}),
  weight: q.weight,
});

/**
 * What each queue of `all` (the default one included) should hold now:
 * fairShares over the capacity, for what its jobs hold plus what its
 * pending jobs ask for. Pending jobs of a queue not in `all` (deleted
 * meanwhile) claim no share. The pass order, the master's metrics and
 * `titan queue list` all use it.
 */
export function queueFairShares(
  all: readonly Queue[],
  pending: Iterable<Pick<QueuedJob, 'queue' | 'resources'>>,
  allocatedByQueue: ReadonlyMap<string, Resources>,
  capacity: Resources,
): Map<string, Resources> {
  const demand = new Map<string, Resources>();
  for (const q of all) demand.set(q.name, allocatedByQueue.get(q.name) ?? { ...ZERO_RESOURCES });
  for (const job of pending) {
    const name = queueOf(job);
    demand.set(name, addResources(demand.get(name) ?? { ...ZERO_RESOURCES }, job.resources));
  }
  return fairShares(
    capacity,
    all.map((q) => ({ ...param(q), demand: demand.get(q.name) ?? { ...ZERO_RESOURCES } })),
  );
}

/**
 * The pass order: with every job in the default queue (the common case, and
 * the fast path for long queues) it is the kept queue order `ordered` (which
 * should leave out the `blocked` jobs: the master's does),
 * highest priority then first submitted (compareJobsInQueue). Otherwise
 * queues are offered in fair-share order (quota first, then idle capacity by
 * weighted DRF; see fair-share.ts), and inside a queue by priority then
 * submission.
 */
export function passOrder<J extends QueuedJob>(
  ordered: readonly J[],
  pending: ReadonlyMap<string, J>,
  queues: readonly Queue[],
  allocatedByQueue: ReadonlyMap<string, Resources>,
  capacity: Resources,
  blocked?: (job: J) => boolean,
): PassOrder<J> {
  if (!queuesMatter(queues, pending.values())) return { jobs: ordered, placed: () => {}, overLimit: () => [] };
  const all = withDefaultQueue(queues);
  // A job waiting for other jobs (blocked) is not offered, and asks for no share: it could not use one.
  const offered = blocked ? [...pending.values()].filter((j) => !blocked(j)) : [...pending.values()];
  const shares = queueFairShares(all, offered, allocatedByQueue, capacity);
  const states: QueueState[] = all.map((q) => ({
    ...param(q),
    allocated: allocatedByQueue.get(q.name) ?? { ...ZERO_RESOURCES },
    fairShare: shares.get(q.name) ?? { ...ZERO_RESOURCES },
  }));
  const order = new FairShareOrder(capacity, states, offered);
  return {
    jobs: { [Symbol.iterator]: () => ({ next: () => { const job = order.next(); return job ? { value: job, done: false } : { value: undefined, done: true }; } }) },
    placed: (job) => order.placed(job),
    overLimit: () => order.overLimit,
  };
}
