import { DEFAULT_QUEUE, type ResourceLimit } from '../../pkg/model/queue.js';
import { addResources, dominantShare, RESOURCE_DIMENSIONS, subtractResources, type Resources } from '../../pkg/model/resources.js';
import { fitsQueueLimit, type QueueState } from './fair-share.js';
import { buildTree, EPS, zero, type TreeNode } from './queue-tree.js';

/**
 * Offer tiers, lowest first: below quota (guaranteed capacity comes first),
 * below fair share (borrowing, by DRF), then the rest (capacity nobody
 * else's pending jobs can use: keeps the cluster busy).
 */
export type OfferTier = 'quota' | 'fair' | 'idle';
const TIER_RANK: Record<OfferTier, number> = { quota: 0, fair: 1, idle: 2 };

interface Rank {
  tier: OfferTier;
  key: number;
}

/** How far a queue is into its quota: its largest allocated/quota over the dimensions it has quota in. */
function quotaShare(allocated: Resources, quota: Resources): number | undefined {
  let share: number | undefined;
  for (const d of RESOURCE_DIMENSIONS) if (quota[d] > 0) share = Math.max(share ?? 0, allocated[d] / quota[d]);
  return share;
}

function rankOf(allocated: Resources, q: { quota: Resources; weight: number }, fairShare: Resources, capacity: Resources): Rank {
  const inQuota = quotaShare(allocated, q.quota);
  if (inQuota !== undefined && inQuota < 1) return { tier: 'quota', key: inQuota };
  const dominant = dominantShare(allocated, capacity);
  const weighted = dominant / (q.weight > 0 ? q.weight : EPS);
  if (dominant < dominantShare(fairShare, capacity) * (1 - EPS)) return { tier: 'fair', key: weighted };
  return { tier: 'idle', key: weighted };
}

function compareRanks(a: Rank, b: Rank): number {
  return TIER_RANK[a.tier] - TIER_RANK[b.tier] || a.key - b.key;
}

/** Every job asks for CPU and memory: a queue with none left under its limit can take no job at all. */
function noRoomLeft(allocated: Resources, limit: ResourceLimit | undefined): boolean {
  return limit !== undefined && (['cpu', 'memory'] as const).some((d) => limit[d] !== undefined && allocated[d] >= (limit[d] as number));
}

/** One queue (or a parent's own-jobs stand-in) while ordering: its subtree's allocation, and its pending jobs. */
interface Member<J> {
  node: TreeNode<QueueState>;
  /** Subtree allocation: own jobs plus children's. */
  allocated: Resources;
  fairShare: Resources;
  parent?: Member<J>;
  children: Member<J>[];
  /** Own pending jobs, offer order; `head` is the next one. */
  jobs: J[];
  head: number;
  /** Pending jobs in the subtree not yet offered. */
  waiting: number;
}

function buildMembers<J>(queues: readonly QueueState[]): { roots: Member<J>[]; byName: Map<string, Member<J>> } {
  const roots = buildTree(queues, (q) => ({ ...q, quota: zero(), limit: undefined, weight: 1, fairShare: zero() }));
  const byName = new Map<string, Member<J>>();
  const member = (node: TreeNode<QueueState>, parent: Member<J> | undefined): Member<J> => {
    const m: Member<J> = { node, allocated: zero(), fairShare: node.queue.fairShare, parent, children: [], jobs: [], head: 0, waiting: 0 };
    m.children = node.children.map((c) => member(c, m));
    if (m.children.length === 0) {
      m.allocated = { ...node.queue.allocated };
      byName.set(node.name, m); // a parent's own jobs go to its stand-in, which carries its name
    } else {
      m.allocated = m.children.reduce((s, c) => addResources(s, c.allocated), zero());
      const own = m.children[m.children.length - 1];
      own.fairShare = clampZero(subtractResources(node.queue.fairShare, m.children.slice(0, -1).reduce((s, c) => addResources(s, c.fairShare), zero())));
    }
    return m;
  };
  return { roots: roots.map((r) => member(r, undefined)), byName };
}

function clampZero(r: Resources): Resources {
  return { cpu: Math.max(0, r.cpu), memory: Math.max(0, r.memory), gpuMilli: Math.max(0, r.gpuMilli) };
}

function memberRank<J>(m: Member<J>, capacity: Resources): Rank {
  return rankOf(m.allocated, m.node.queue, m.fairShare, capacity);
}

/** The best of a level's members by rank, ties by name (deterministic). */
function best<J>(members: readonly Member<J>[], capacity: Resources, eligible: (m: Member<J>) => boolean): Member<J> | undefined {
  let chosen: Member<J> | undefined;
  let chosenRank: Rank | undefined;
  for (const m of members) {
    if (!eligible(m)) continue;
    const rank = memberRank(m, capacity);
    const order = chosenRank === undefined ? -1 : compareRanks(rank, chosenRank) || (m.node.name < (chosen as Member<J>).node.name ? -1 : 1);
    if (order < 0) {
      chosen = m;
      chosenRank = rank;
    }
  }
  return chosen;
}

/**
 * The order in which queues should be offered the next placement, given
 * their allocations and fair shares (from fairShares over the same
 * capacity): queues below quota first (least of their quota used first),
 * then queues below their fair share by dominant share ÷ weight, then the
 * rest by the same measure. A parent's children are listed together, in
 * their own order, where the parent ranks among its siblings (a parent's
 * own jobs are listed under its name). A queue with no CPU or memory left
 * under its limit (or its parent's) is left out: every job needs both. A
 * queue at its GPU limit stays in (its CPU-only jobs may still run):
 * fitsQueueLimit decides per job.
 */
export function queueOrder(capacity: Resources, queues: readonly QueueState[]): string[] {
  const { roots } = buildMembers<never>(queues);
  const order: string[] = [];
  const visit = (level: Member<never>[]): void => {
    const open = level.filter((m) => !noRoomLeft(m.allocated, m.node.queue.limit));
    const ranked = open
      .map((m) => ({ m, rank: memberRank(m, capacity) }))
      .sort((a, b) => compareRanks(a.rank, b.rank) || (a.m.node.name < b.m.node.name ? -1 : a.m.node.name > b.m.node.name ? 1 : 0));
    for (const { m } of ranked) {
      if (m.children.length > 0) visit(m.children);
      else order.push(m.node.name);
    }
  };
  visit(roots);
  return order;
}

/** What the ordering reads of a pending job; the master's job types have these fields. */
export interface QueuedJob {
  id: string;
  queue?: string;
  priority: number;
  createdAt: number;
  resources: Resources;
}

/** Inside a queue: highest priority first, then first submitted (ids sort by creation time). */
export function compareJobsInQueue(a: QueuedJob, b: QueuedJob): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * The pending jobs of a scheduling pass, offered one at a time across
 * queues: each `next()` picks the best queue as queueOrder ranks it (going
 * down from the top level), and returns that queue's next job. Tell it
 * about each placement (`placed`), so the queue's allocation — and its rank
 * — move before the next offer; a job that was not placed needs no call,
 * it stays pending. Jobs that would take their queue (or its parent) over
 * a limit are not offered; they are collected in `overLimit`.
 *
 * `queues` should hold every queue, the default one included
 * (withDefaultQueue in pkg/model/queue.ts). A job naming a queue that is not
 * there (deleted meanwhile) is treated as in a top-level queue of that name
 * with no quota, no limit, weight 1 and no fair share: it gets only capacity
 * no other queue can use.
 */
export class FairShareOrder<J extends QueuedJob> {
  /** Jobs held back because their queue, or its parent, is at its limit. */
  readonly overLimit: J[] = [];
  private readonly roots: Member<J>[];
  private readonly byName: Map<string, Member<J>>;
  private readonly queueOfJob = new Map<string, Member<J>>();

  constructor(
    private readonly capacity: Resources,
    queues: readonly QueueState[],
    jobs: Iterable<J>,
  ) {
    const known = new Set(queues.map((q) => q.name));
    const all = [...queues];
    const list = [...jobs];
    for (const j of list) {
      const name = j.queue ?? DEFAULT_QUEUE;
      if (!known.has(name)) {
        known.add(name);
        all.push({ name, quota: zero(), weight: 1, allocated: zero(), fairShare: zero() });
      }
    }
    ({ roots: this.roots, byName: this.byName } = buildMembers<J>(all));
    for (const j of list) {
      const m = this.byName.get(j.queue ?? DEFAULT_QUEUE) as Member<J>;
      m.jobs.push(j);
      for (let p: Member<J> | undefined = m; p; p = p.parent) p.waiting++;
    }
    for (const m of this.byName.values()) m.jobs.sort(compareJobsInQueue);
  }

  /** The next job to try to place, or undefined when every queue's jobs were offered. */
  next(): J | undefined {
    for (;;) {
      let level = this.roots;
      let chosen: Member<J> | undefined;
      while (level.length > 0) {
        chosen = best(level, this.capacity, (m) => m.waiting > 0);
        if (!chosen) return undefined;
        level = chosen.children;
      }
      if (!chosen) return undefined;
      const job = chosen.jobs[chosen.head++];
      for (let p: Member<J> | undefined = chosen; p; p = p.parent) p.waiting--;
      if (!this.withinLimits(chosen, job.resources)) {
        this.overLimit.push(job);
        continue;
      }
      this.queueOfJob.set(job.id, chosen);
      return job;
    }
  }

  /** The offered job was placed: it now counts in its queue's (and parent's) allocation. */
  placed(job: J): void {
    const m = this.queueOfJob.get(job.id) ?? this.byName.get(job.queue ?? DEFAULT_QUEUE);
    for (let p = m; p; p = p.parent) p.allocated = addResources(p.allocated, job.resources);
  }

  /** Every queue's current allocation (own jobs, or for a parent its subtree's), placements of this pass included. */
  allocations(): Map<string, Resources> {
    const out = new Map<string, Resources>();
    const visit = (m: Member<J>): void => {
      if (!m.node.own) out.set(m.node.name, { ...m.allocated });
      m.children.forEach(visit);
    };
    this.roots.forEach(visit);
    return out;
  }

  private withinLimits(m: Member<J>, request: Resources): boolean {
    for (let p: Member<J> | undefined = m; p; p = p.parent) {
      if (!fitsQueueLimit(p.allocated, request, p.node.queue.limit)) return false;
    }
    return true;
  }
}
