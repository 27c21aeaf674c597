import { TitanError, invalidInput } from './errors.js';
import { parseCpu, parseMemory } from './parse.js';
import { ZERO_RESOURCES, type Resources } from './resources.js';

/**
 * Queues share the cluster: each holds a guaranteed quota, an optional hard
 * limit and a weight for borrowing idle capacity beyond its quota. Two
 * levels at most (department → team), like KAI. See docs/queues.md.
 */
export interface Queue {
  name: string;
  /** A top-level queue this one belongs to; absent for a top-level queue. */
  parent?: string;
  /** Guaranteed share (deserved): the queue gets up to this much before anyone borrows. */
  quota: Resources;
  /** Hard cap; a dimension that is absent is not capped. Absent: no cap at all. */
  limit?: ResourceLimit;
  /** Share of idle capacity lent beyond quotas, relative to other queues' weights. */
  weight: number;
  createdAt: number;
}

/** A cap per dimension: cpu and memory in millicores and bytes, gpuMilli in milli-GPU; absent = uncapped. */
export type ResourceLimit = Partial<Resources>;

/** The queue of every job that names none; it always exists, stored or not, and cannot be deleted. */
export const DEFAULT_QUEUE = 'default';

export const DEFAULT_QUEUE_WEIGHT = 1;

/** The default queue as it is when nobody changed it: no quota, no limit, weight 1. */
export function implicitDefaultQueue(): Queue {
  return { name: DEFAULT_QUEUE, quota: { ...ZERO_RESOURCES }, weight: DEFAULT_QUEUE_WEIGHT, createdAt: 0 };
}

/** The stored queues plus the default queue when it is not stored (it exists implicitly). */
export function withDefaultQueue(queues: readonly Queue[]): Queue[] {
  return queues.some((q) => q.name === DEFAULT_QUEUE) ? [...queues] : [implicitDefaultQueue(), ...queues];
}

/** The queue a job belongs to: its own, or the default queue. */
export function queueOf(job: { queue?: string }): string {
  return job.queue ?? DEFAULT_QUEUE;
}

// Same shape as job names: queue names also end up as an etcd key segment, so no '/'.
const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function parseQueueName(text: string | undefined, field = 'queue'): string {
  const name = (text ?? '').trim();
  if (!QUEUE_NAME.test(name)) throw invalidInput(field, `"${text ?? ''}" must be 1-63 letters, digits, '.', '_' or '-'`);
  return name;
}

/** Queue flags as the user wrote them (`titan queue create|update`), before validation. */
export interface QueueInput {
  parent?: string;
  quotaCpu?: string;
  quotaMem?: string;
  quotaGpu?: string;
  limitCpu?: string;
  limitMem?: string;
  limitGpu?: string;
  weight?: string;
}

/** A flag value that removes a limit dimension or the parent on update. */
export const NONE = 'none';

const ZERO = /^0+(\.0+)?[A-Za-z]*$/;

/** Quotas and limits may be zero (a team without GPUs), which job requests may not. */
function parseAmount(text: string, field: string, parse: (t: string, f: string) => number): number {
  return ZERO.test(text.trim()) ? 0 : parse(text, field);
}

/**
 * GPUs for a quota or limit → milli-GPU. Unlike a job's request, 1.5 GPUs
 * is a sensible quota: it is a share of the cluster, not a device count.
 */
export function parseGpuAmount(text: string, field: string): number {
  const value = text.trim();
  if (!/^\d+(\.\d+)?$/.test(value)) throw invalidInput(field, `"${value}" is not a number of GPUs (use 0, 0.5, 4)`);
  const milli = Number(value) * 1000;
  if (Math.abs(milli - Math.round(milli)) > 1e-6) throw invalidInput(field, `"${value}" is finer than 1/1000 of a GPU`);
  return Math.round(milli);
}

function parseWeight(text: string): number {
  const value = text.trim();
  const weight = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(weight > 0) || !Number.isFinite(weight)) {
    throw invalidInput('weight', `"${text}" must be a number above zero (default ${DEFAULT_QUEUE_WEIGHT})`);
  }
  return weight;
}

const DIMENSIONS = ['cpu', 'memory', 'gpuMilli'] as const;
type Dimension = (typeof DIMENSIONS)[number];

const PARSERS: Record<Dimension, (t: string, f: string) => number> = {
  cpu: (t, f) => parseAmount(t, f, parseCpu),
  memory: (t, f) => parseAmount(t, f, parseMemory),
  gpuMilli: parseGpuAmount,
};

const QUOTA_FLAGS: Record<Dimension, keyof QueueInput> = { cpu: 'quotaCpu', memory: 'quotaMem', gpuMilli: 'quotaGpu' };
const LIMIT_FLAGS: Record<Dimension, keyof QueueInput> = { cpu: 'limitCpu', memory: 'limitMem', gpuMilli: 'limitGpu' };

/**
 * A queue from user input, checked on its own (the tree is checked by
 * validateQueueTree). With `base`, an update: only the given fields change,
 * and `none` removes a limit dimension or the parent.
 */
export function buildQueue(name: string, input: QueueInput, base?: Queue, now: number = Date.now()): Queue {
  const queueName = parseQueueName(name, 'name');
  const quota: Resources = { ...(base?.quota ?? ZERO_RESOURCES) };
  const limit: ResourceLimit = { ...(base?.limit ?? {}) };
  for (const d of DIMENSIONS) {
    const q = input[QUOTA_FLAGS[d]];
    if (q !== undefined) quota[d] = PARSERS[d](q, QUOTA_FLAGS[d]);
    const l = input[LIMIT_FLAGS[d]];
    if (l !== undefined && l.trim().toLowerCase() === NONE) delete limit[d];
    else if (l !== undefined) limit[d] = PARSERS[d](l, LIMIT_FLAGS[d]);
  }
  for (const d of DIMENSIONS) {
    const cap = limit[d];
    if (cap !== undefined && cap < quota[d]) {
      throw invalidInput(
        LIMIT_FLAGS[d],
        `the limit (${formatAmount(d, cap)}) is below the quota (${formatAmount(d, quota[d])}): a limit must leave room for the quota`,
      );
    }
  }
  let parent = base?.parent;
  if (input.parent !== undefined) {
    parent = input.parent.trim().toLowerCase() === NONE ? undefined : parseQueueName(input.parent, 'parent');
  }
  if (parent === queueName) throw invalidInput('parent', `a queue cannot be its own parent`);
  if (parent !== undefined && queueName === DEFAULT_QUEUE) throw invalidInput('parent', 'the default queue stays top-level');
  const weight = input.weight !== undefined ? parseWeight(input.weight) : (base?.weight ?? DEFAULT_QUEUE_WEIGHT);
  return {
    name: queueName,
    ...(parent !== undefined ? { parent } : {}),
    quota,
    ...(Object.keys(limit).length > 0 ? { limit } : {}),
    weight,
    createdAt: base?.createdAt ?? now,
  };
}

/** Whether a queue has no cap in any dimension. */
export function isUnlimited(limit: ResourceLimit | undefined): boolean {
  return limit === undefined || DIMENSIONS.every((d) => limit[d] === undefined);
}

/**
 * Checks the whole set of queues after a change: parents exist and are
 * top-level (two levels at most), the default queue has no children, and a
 * parent's quota covers the sum of its children's quotas (what it
 * guarantees its teams must be guaranteed to it). Throws InvalidInput
 * naming the field a user would change.
 */
export function validateQueueTree(queues: readonly Queue[]): void {
  const byName = new Map(withDefaultQueue(queues).map((q) => [q.name, q]));
  const children = new Map<string, Queue[]>();
  for (const q of byName.values()) {
    if (q.parent === undefined) continue;
    const parent = byName.get(q.parent);
    if (!parent) throw invalidInput('parent', `no queue "${q.parent}" (create it first; see titan queue list)`);
    if (parent.name === DEFAULT_QUEUE) throw invalidInput('parent', 'the default queue cannot have child queues');
    if (parent.parent !== undefined) {
      throw invalidInput('parent', `"${parent.name}" is itself a child of "${parent.parent}": queues nest two levels at most`);
    }
    children.set(parent.name, [...(children.get(parent.name) ?? []), q]);
  }
  for (const [name, kids] of children) {
    const parent = byName.get(name) as Queue;
    if (parent.parent !== undefined) continue; // reported above for the child that names it
    for (const d of DIMENSIONS) {
      const sum = kids.reduce((s, k) => s + k.quota[d], 0);
      if (sum > parent.quota[d]) {
        throw invalidInput(
          QUOTA_FLAGS[d],
          `the quotas of ${name}'s child queues (${kids.map((k) => k.name).join(', ')}) add up to ${formatAmount(d, sum)}, ` +
            `more than ${name}'s own quota of ${formatAmount(d, parent.quota[d])}: raise ${name}'s quota first`,
        );
      }
    }
  }
}

const round3 = (n: number): string => String(Math.round(n * 1000) / 1000);

/** An amount in the units the flags take: "8 cpu", "32Gi memory", "4 gpu". */
function formatAmount(d: Dimension, value: number): string {
  if (d === 'cpu') return `${round3(value / 1000)} cpu`;
  if (d === 'gpuMilli') return `${round3(value / 1000)} gpu`;
  return `${round3(value / 2 ** 30)}Gi memory`;
}

/** The queues whose parent is the given one. */
export function childQueues(queues: readonly Queue[], name: string): Queue[] {
  return queues.filter((q) => q.parent === name);
}

/** A queue that must exist and does not: a typed error with the way out. */
export function unknownQueue(name: string, field = 'queue'): TitanError {
  return invalidInput(field, `no queue "${name}" (see titan queue list, or create it with titan queue create ${name})`);
}
