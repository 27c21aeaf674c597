import type { Assignment } from '../../pkg/model/assignment.js';
import { invalidInput } from '../../pkg/model/errors.js';
import { isFinal, type Job } from '../../pkg/model/job.js';
import type { NodeInfo } from '../../pkg/model/node.js';
import {
  DEFAULT_QUEUE,
  buildQueue,
  parseQueueName,
  queueOf,
  withDefaultQueue,
  type Queue,
  type QueueInput,
  type ResourceLimit,
} from '../../pkg/model/queue.js';
import { addResources, formatGpu, MILLI_PER_GPU, ZERO_RESOURCES, type Resources } from '../../pkg/model/resources.js';
import { records } from '../../pkg/store/codec.js';
import type { Store } from '../../pkg/store/store.js';
import { queueFairShares } from '../scheduler/pass-order.js';
import { formatCpu, formatMemory, renderTable, trimNumber } from './format.js';

/** `titan queue create|update` flags as commander hands them over (`--quota-cpu` → quotaCpu, ...). */
export type QueueFlags = QueueInput;

// ---- create, update, delete -----------------------------------------------------

/** `titan queue create NAME`: validated before etcd is written; Conflict if it exists. */
export async function createQueue(store: Store, name: string, flags: QueueFlags, now: number = Date.now()): Promise<Queue> {
  const queue = buildQueue(name, flags, undefined, now);
  await store.createQueue(queue);
  return queue;
}

const CHANGE_FLAGS: readonly (keyof QueueFlags)[] = ['parent', 'quotaCpu', 'quotaMem', 'quotaGpu', 'limitCpu', 'limitMem', 'limitGpu', 'weight'];

/** `titan queue update NAME`: the given flags change, the rest stays; `none` removes a limit or the parent. */
export async function updateQueue(store: Store, name: string, flags: QueueFlags): Promise<Queue> {
  const queueName = parseQueueName(name, 'name');
  if (CHANGE_FLAGS.every((f) => flags[f] === undefined)) {
    throw invalidInput('queue', 'nothing to change: give --quota-*, --limit-* (a value or none), --weight or --parent');
  }
  return store.updateQueue(queueName, (current) => buildQueue(queueName, flags, current));
}

/** `titan queue delete NAME`: refused while child queues or unfinished jobs use it. */
export async function deleteQueue(store: Store, name: string): Promise<void> {
  await store.deleteQueue(parseQueueName(name, 'name'));
}

// ---- list ----------------------------------------------------------------------

/** One row of `titan queue list` (and element of its JSON). For a parent, usage covers its whole subtree. */
export interface QueueUsage {
  name: string;
  parent: string | null;
  quota: Resources;
  /** null: no cap; an absent dimension is not capped. */
  limit: ResourceLimit | null;
  weight: number;
  /** What jobs holding assignments (Scheduled or Running) take now. */
  allocated: Resources;
  /** Jobs holding assignments. */
  running: number;
  /** Jobs waiting to be placed, and what they ask for together. */
  pending: number;
  pendingRequest: Resources;
  /**
   * The share the scheduling pass orders queues by (queueFairShares): over
   * the registered nodes' capacity, for its allocation plus pending demand.
   * A deleted queue has none: its jobs get only capacity no other queue can use.
   */
  fairShare: Resources;
  /** The queue is not stored (the default queue, until someone changes it). */
  implicit: boolean;
  /** Jobs name this queue but it was deleted (they are scheduled as in a queue with no quota). */
  missing: boolean;
}

/** What `list` needs of a job: enough to count it, without keeping whole jobs of a big cluster. */
export interface JobLoad {
  id: string;
  queue: string;
  state: Job['state'];
  resources: Resources;
}

/** What the cluster offers: the registered nodes' capacity; GPUs as their devices add up, as the scheduler counts them. */
export function clusterCapacity(nodes: readonly NodeInfo[]): Resources {
  return nodes.reduce(
    (sum, n) => addResources(sum, { cpu: n.capacity.cpu, memory: n.capacity.memory, gpuMilli: n.gpus.length * MILLI_PER_GPU }),
    { ...ZERO_RESOURCES },
  );
}

interface Load {
  allocated: Resources;
  running: number;
  pending: number;
  pendingRequest: Resources;
}

const emptyLoad = (): Load => ({ allocated: { ...ZERO_RESOURCES }, running: 0, pending: 0, pendingRequest: { ...ZERO_RESOURCES } });

function addLoad(a: Load, b: Load): Load {
  return {
    allocated: addResources(a.allocated, b.allocated),
    running: a.running + b.running,
    pending: a.pending + b.pending,
    pendingRequest: addResources(a.pendingRequest, b.pendingRequest),
  };
}

/**
 * Joins queues with the jobs in them and computes fair shares: pure, so
 * the numbers `titan queue list` prints are unit-tested. `stored` are the
 * stored queues; the default queue is added when not stored, and a queue
 * that jobs name but that is gone gets a row marked missing.
 */
export function summarizeQueues(
  stored: readonly Queue[],
  nodes: readonly NodeInfo[],
  assignments: readonly Assignment[],
  jobs: readonly JobLoad[],
): QueueUsage[] {
  const queues = withDefaultQueue(stored);
  const storedNames = new Set(stored.map((q) => q.name));
  const known = new Set(queues.map((q) => q.name));
  const missing = new Set<string>();
  const own = new Map<string, Load>(queues.map((q) => [q.name, emptyLoad()]));
  const loadOf = (name: string): Load => {
    if (!own.has(name)) {
      own.set(name, emptyLoad());
      if (!known.has(name)) missing.add(name);
    }
    return own.get(name) as Load;
  };
  const queueOfJob = new Map<string, string>();
  for (const job of jobs) {
    queueOfJob.set(job.id, job.queue);
    if (job.state === 'Pending') {
      const load = loadOf(job.queue);
      load.pending++;
      load.pendingRequest = addResources(load.pendingRequest, job.resources);
    }
  }
  for (const a of assignments) {
    const queue = queueOfJob.get(a.jobId);
    if (queue === undefined) continue; // the job ended (or was removed) since the assignments were read
    const load = loadOf(queue);
    load.running++;
    load.allocated = addResources(load.allocated, a.resources);
  }
  const all: Queue[] = [...queues, ...[...missing].map((name) => ({ name, quota: { ...ZERO_RESOURCES }, weight: 1, createdAt: 0 }))];
  const allocated = new Map([...own].map(([name, load]) => [name, load.allocated]));
  const shares = queueFairShares(queues, jobs.filter((j) => j.state === 'Pending'), allocated, clusterCapacity(nodes));
  const subtree = (q: Queue): Load => all.filter((c) => c.parent === q.name).reduce((sum, c) => addLoad(sum, own.get(c.name) as Load), own.get(q.name) as Load);
  return treeOrder(all).map((q) => {
    const load = subtree(q);
    return {
      name: q.name,
      parent: q.parent ?? null,
      quota: q.quota,
      limit: q.limit ?? null,
      weight: q.weight,
      ...load,
      fairShare: shares.get(q.name) ?? { ...ZERO_RESOURCES },
      implicit: !storedNames.has(q.name) && !missing.has(q.name),
      missing: missing.has(q.name),
    };
  });
}

/** Top-level queues (default first, then by name), each followed by its children by name. */
function treeOrder(queues: readonly Queue[]): Queue[] {
  const byName = (a: Queue, b: Queue): number => (a.name === DEFAULT_QUEUE ? -1 : b.name === DEFAULT_QUEUE ? 1 : a.name < b.name ? -1 : 1);
  const names = new Set(queues.map((q) => q.name));
  // A queue whose parent is gone is listed as top-level rather than hidden.
  const top = queues.filter((q) => q.parent === undefined || !names.has(q.parent)).sort(byName);
  return top.flatMap((t) => [t, ...queues.filter((q) => q.parent === t.name).sort(byName)]);
}

/** Reads queues, nodes, assignments and (paged) jobs, and summarizes them. */
export async function listQueueUsage(store: Store): Promise<QueueUsage[]> {
  const assignments: Assignment[] = [];
  const jobs: JobLoad[] = [];
  const [queues, nodes] = await Promise.all([
    store.listQueues(),
    store.listNodes(),
    store.scan(store.keys.collection('assign'), records.assignment, (items) => void assignments.push(...items.map((i) => i.value))),
    store.scan(store.keys.collection('jobs'), records.job, (items) => {
      for (const { value: j } of items) {
        if (!isFinal(j.state)) jobs.push({ id: j.id, queue: queueOf(j), state: j.state, resources: j.resources });
      }
    }),
  ]);
  return summarizeQueues(
    queues.items.map((i) => i.value),
    nodes.items.map((i) => i.value),
    assignments,
    jobs,
  );
}

/** "8/32Gi/4": CPU cores, memory, GPUs. */
export function formatResources(r: Resources): string {
  return `${formatCpu(r.cpu)}/${formatMemory(r.memory)}/${formatGpu(r.gpuMilli)}`;
}

/** "-/-/8": each capped dimension, "-" where uncapped; "-" when nothing is capped. */
export function formatLimit(limit: ResourceLimit | null): string {
  if (!limit || (limit.cpu === undefined && limit.memory === undefined && limit.gpuMilli === undefined)) return '-';
  const part = (v: number | undefined, f: (n: number) => string): string => (v === undefined ? '-' : f(v));
  return `${part(limit.cpu, formatCpu)}/${part(limit.memory, formatMemory)}/${part(limit.gpuMilli, formatGpu)}`;
}

export function renderQueueTable(queues: readonly QueueUsage[]): string {
  return renderTable(
    ['NAME', 'PARENT', 'QUOTA', 'LIMIT', 'WEIGHT', 'ALLOCATED', 'PENDING', 'FAIR SHARE'],
    queues.map((q) => [
      q.missing ? `${q.name} (deleted)` : q.name,
      q.parent ?? '-',
      formatResources(q.quota),
      formatLimit(q.limit),
      trimNumber(q.weight, 3),
      formatResources(q.allocated),
      String(q.pending),
      formatResources(q.fairShare),
    ]),
  );
}

/** One line after create/update: what the queue now is. */
export function describeQueue(verb: string, q: Queue): string {
  const parent = q.parent ? ` in ${q.parent}` : '';
  return `queue ${q.name}${parent} ${verb}: quota ${formatResources(q.quota)}, limit ${formatLimit(q.limit ?? null)}, weight ${trimNumber(q.weight, 3)} (cpu/memory/gpu)`;
}
