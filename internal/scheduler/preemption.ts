import { gpuDeviceId } from '../../pkg/model/node.js';
import { DEFAULT_QUEUE } from '../../pkg/model/queue.js';
import { addResources, dominantShare, RESOURCE_DIMENSIONS, subtractResources, ZERO_RESOURCES, type Resources } from '../../pkg/model/resources.js';
import { allocate, chooseGpuIndexes, release } from './allocation.js';
import { fitsQueueLimit, type QueueState } from './fair-share.js';
import { firstRejection, fitsEmptyNode } from './feasibility.js';
import type { JobRequest, NodeView } from './types.js';

/**
 * Preemption and reclaim planning (docs/queues.md, "Preemption and reclaim"),
 * pure: no etcd, no clock. Given the snapshot, it picks the running attempts
 * whose eviction makes room for one pending job on one node, simulating
 * every release on copies first (KAI's statement/checkpoint idea): a set is
 * returned only if the job then really fits, and it holds no attempt the job
 * does not need. Nothing is evicted when no set makes room.
 *
 * - Reclaim: a job whose queue stays within its quota with the job added
 *   may evict attempts of other queues that run on borrowed capacity
 *   (evicting them leaves their queue at or above its quota).
 * - Priority preemption: a job may evict lower-priority attempts of its own
 *   queue that are preemptible: `preemptible` on the victim's spec, or by
 *   default only while the victim's queue is over its quota.
 *
 * Attempts younger than their minimum runtime are never victims, nor is an
 * attempt submitted with `preemptible: false`.
 */


/** A running (or scheduled) attempt, as the planner needs it; the master builds these from its snapshot. */
export interface RunningJob {
  jobId: string;
  nodeId: string;
  /** The attempt the assignment is for (passed on to Store.evictJobs, which then skips a newer one). */
  attempt?: number;
  resources: Resources;
  gpuDevices: readonly string[];
  /** Absent: the default queue. */
  queue?: string;
  priority: number;
  /** When the attempt started (its scheduledAt while it has not started yet): the minimum runtime counts from here. */
  startedAt: number;
  /** The job's `preemptible` (absent: preemptible only while its queue is over quota). */
  preemptible?: boolean;
  minRuntimeMs?: number;
  /** Its assignment already carries `evict`: its capacity is on its way back. */
  evicting?: boolean;
}

/** The queue fields the planner reads; QueueState (fair-share.ts) has them. */
export type PreemptionQueue = Pick<QueueState, 'name' | 'parent' | 'quota' | 'limit'>;

/** The pending job that does not fit; the master's PendingJob plus its queue. */
export interface PreemptorJob extends JobRequest {
  priority: number;
  /** Absent: the default queue. */
  queue?: string;
}

export interface PreemptionOptions {
  /** Minimum runtime of attempts whose job sets none (default 0: a job may be evicted at once). */
  defaultMinRuntimeMs?: number;
  /** No plan evicts more than this many attempts (default 32). */
  maxVictims?: number;
}

/** One attempt to evict: the shape Store.evictJobs takes. */
export interface Victim {
  jobId: string;
  nodeId: string;
  attempt?: number;
  /** `Reclaimed by queue X` or `Preempted by job Y`, recorded in the victim's history. */
  reason: string;
}

export type PreemptionMode = 'reclaim' | 'preempt';

export type PreemptionPlan =
  /** Evict `victims` (all on `nodeId`); once they are gone the job fits there. */
  | { kind: 'evict'; mode: PreemptionMode; nodeId: string; victims: Victim[]; freedNodes: string[] }
  /**
   * Evict nothing more: the job fits on `nodeId` once the evictions already
   * requested end (or already fits there). The master should keep the job
   * pending and not hand that room to others.
   */
  | { kind: 'wait'; nodeId: string }
  | { kind: 'none'; reason: string };

export interface PreemptionInput {
  /** The snapshot's nodes; never mutated. */
  nodes: readonly NodeView[];
  /** Every attempt that holds resources (every assignment). */
  running: readonly RunningJob[];
  /** Every queue (the default one may be left out: it then has no quota). */
  queues: readonly PreemptionQueue[];
  job: PreemptorJob;
  now: number;
  options?: PreemptionOptions;
}

/** One pending job's plan over the snapshot. */
export function planPreemption(input: PreemptionInput): PreemptionPlan {
  return new Preemptor(input.nodes, input.running, input.queues, input.options).plan(input.job, input.now);
}

/** A queue as a node of the tree; a parent's own jobs sit in a stand-in child with no quota (as in fair-share.ts). */
interface QueueNode {
  quota: Resources;
  limit?: PreemptionQueue['limit'];
  parent?: string;
}

/** The stand-in for a parent queue's own jobs. */
const ownKey = (name: string): string => `${name}\u0000own`;

interface Candidate {
  mode: PreemptionMode;
  node: NodeView;
  victims: RunningJob[];
  cost: number[];
}

/**
 * The planner for one scheduling pass. Each plan() is simulated on copies
 * and, when it evicts (or waits), committed into the planner's own state:
 * the victims count as gone and the job as placed on its node, so the next
 * plan() of the pass neither counts on the same room nor picks the same
 * victims. The snapshot passed in is never mutated.
 */
export class Preemptor {
  /** Nodes whose capacity this pass's evictions free: evicted jobs should not be placed back there in the same cycle. */
  readonly freedNodes = new Set<string>();
  /** Job ids evicted by this pass's plans. */
  readonly evicted = new Set<string>();
  private readonly nodes = new Map<string, NodeView>();
  private readonly byNode = new Map<string, RunningJob[]>();
  private readonly tree = new Map<string, QueueNode>();
  /** Subtree allocation per tree key, attempts being evicted left out. */
  private readonly allocated = new Map<string, Resources>();
  private readonly minRuntimeMs: number;
  private readonly maxVictims: number;

  constructor(nodes: readonly NodeView[], running: readonly RunningJob[], queues: readonly PreemptionQueue[], options: PreemptionOptions = {}) {
    this.minRuntimeMs = options.defaultMinRuntimeMs ?? 0;
    this.maxVictims = options.maxVictims ?? 32;
    for (const n of nodes) this.nodes.set(n.id, cloneNode(n));
    const names = new Set(queues.map((q) => q.name));
    const parents = new Set(queues.map((q) => q.parent).filter((p): p is string => p !== undefined && names.has(p)));
    for (const q of queues) {
      const parent = q.parent !== undefined && names.has(q.parent) ? q.parent : undefined;
      this.tree.set(q.name, { quota: q.quota, ...(q.limit ? { limit: q.limit } : {}), ...(parent !== undefined ? { parent } : {}) });
      if (parents.has(q.name)) this.tree.set(ownKey(q.name), { quota: ZERO_RESOURCES, parent: q.name });
    }
    for (const r of running) {
      if (r.evicting) {
        // Already on its way out: its room counts as free (evictions in flight are not repeated).
        const node = this.nodes.get(r.nodeId);
        if (node) release(node, r.resources, r.gpuDevices);
        continue;
      }
      this.byNode.set(r.nodeId, [...(this.byNode.get(r.nodeId) ?? []), r]);
      this.addToChain(this.allocated, this.leafOf(r.queue), r.resources, 1);
    }
  }

  /** Plans room for one pending job that does not fit, and commits the plan into this pass's state. */
  plan(job: PreemptorJob, now: number): PreemptionPlan {
    const nodes = [...this.nodes.values()].filter((n) => fitsEmptyNode(job, n)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (nodes.length === 0) return { kind: 'none', reason: 'no node could ever run it' };
    const roomy = nodes.find((n) => firstRejection(job, n) === undefined);
    if (roomy) {
      this.reserve(job, roomy);
      return { kind: 'wait', nodeId: roomy.id };
    }
    const leaf = this.leafOf(job.queue);
    const modes: PreemptionMode[] = this.withinQuota(leaf, this.allocated, job.resources) ? ['reclaim', 'preempt'] : ['preempt'];
    for (const mode of modes) {
      let best: Candidate | undefined;
      for (const node of nodes) {
        const found = this.victimsOn(mode, job, node, now);
        if (found && (!best || compareCosts(found.cost, best.cost) < 0)) best = found;
      }
      if (best) return this.commit(job, best);
    }
    const reason = modes.includes('reclaim')
      ? 'no eviction makes room on any node'
      : 'not below its quota (nothing to reclaim) and no lower-priority preemptible job of its queue makes room';
    return { kind: 'none', reason };
  }

  private commit(job: PreemptorJob, c: Candidate): PreemptionPlan {
    const reason = c.mode === 'reclaim' ? `Reclaimed by queue ${job.queue ?? DEFAULT_QUEUE}` : `Preempted by job ${job.id}`;
    const list = this.byNode.get(c.node.id) ?? [];
    for (const v of c.victims) {
      release(c.node, v.resources, v.gpuDevices);
      this.addToChain(this.allocated, this.leafOf(v.queue), v.resources, -1);
      list.splice(list.indexOf(v), 1);
      this.evicted.add(v.jobId);
    }
    this.freedNodes.add(c.node.id);
    this.reserve(job, c.node);
    return {
      kind: 'evict',
      mode: c.mode,
      nodeId: c.node.id,
      victims: c.victims.map((v) => ({ jobId: v.jobId, nodeId: v.nodeId, reason, ...(v.attempt !== undefined ? { attempt: v.attempt } : {}) })),
      freedNodes: [c.node.id],
    };
  }

  /** The job takes its room on the node in this pass's state. */
  private reserve(job: PreemptorJob, node: NodeView): void {
    const devices = (chooseGpuIndexes(job, node) ?? []).map((i) => gpuDeviceId(node.gpus[i]));
    allocate(node, job.resources, devices);
    this.addToChain(this.allocated, this.leafOf(job.queue), job.resources, 1);
  }

  /**
   * The cheapest set of attempts on one node whose eviction lets the job fit
   * there: candidates are released in victim order (lowest priority first,
   * then newest) until the job fits; then each chosen victim, least willingly
   * evicted first, is given back if the job fits without evicting it. So
   * every victim in the set is needed.
   */
  private victimsOn(mode: PreemptionMode, job: PreemptorJob, node: NodeView, now: number): Candidate | undefined {
    const candidates = (this.byNode.get(node.id) ?? []).filter((v) => this.staticallyEligible(mode, job, v, now)).sort(victimOrder);
    if (candidates.length === 0) return undefined;
    const work = cloneNode(node);
    // Amounts are replaced, never changed in place (addToChain): a shallow copy is the simulation's own.
    const alloc = new Map(this.allocated);
    const jobLeaf = this.leafOf(job.queue);
    const chosen: RunningJob[] = [];
    let fits = false;
    for (const v of candidates) {
      if (!this.eligibleNow(mode, jobLeaf, job.resources, v, alloc)) continue;
      release(work, v.resources, v.gpuDevices);
      this.addToChain(alloc, this.leafOf(v.queue), v.resources, -1);
      chosen.push(v);
      fits = firstRejection(job, work) === undefined;
      if (fits) break;
    }
    if (!fits) return undefined;
    for (let i = chosen.length - 1; i >= 0; i--) {
      const v = chosen[i];
      allocate(work, v.resources, v.gpuDevices);
      if (firstRejection(job, work) === undefined) {
        // Not needed: it keeps running (giving it back only raises its queue's allocation, so the others stay eligible).
        this.addToChain(alloc, this.leafOf(v.queue), v.resources, 1);
        chosen.splice(i, 1);
      } else {
        release(work, v.resources, v.gpuDevices);
      }
    }
    if (chosen.length === 0 || chosen.length > this.maxVictims || !this.withinLimits(jobLeaf, alloc, job.resources)) return undefined;
    const evictedShare = chosen.reduce((s, v) => s + dominantShare(v.resources, node.capacity), 0);
    const cost = [chosen.length, Math.max(...chosen.map((v) => v.priority)), -Math.min(...chosen.map((v) => v.startedAt)), evictedShare];
    return { mode, node, victims: chosen, cost };
  }

  /** What does not depend on the allocations while a set is simulated. */
  private staticallyEligible(mode: PreemptionMode, job: PreemptorJob, v: RunningJob, now: number): boolean {
    if (now - v.startedAt < (v.minRuntimeMs ?? this.minRuntimeMs)) return false;
    const sameQueue = this.leafOf(v.queue) === this.leafOf(job.queue);
    if (mode === 'reclaim') return !sameQueue && v.preemptible !== false;
    return sameQueue && v.priority < job.priority && v.preemptible !== false;
  }

  /**
   * Reclaim: the victim's queues up to the one it shares with the job's
   * stay at or above their quota without it, and the job's queues up to
   * there stay within theirs with the job. Preemption: the victim says it is
   * preemptible, or by default its queue is still at or over quota without it.
   */
  private eligibleNow(mode: PreemptionMode, jobLeaf: string, request: Resources, v: RunningJob, alloc: Map<string, Resources>): boolean {
    const victimChain = this.chainOf(this.leafOf(v.queue));
    if (mode === 'preempt') return v.preemptible === true || this.borrowed(victimChain[0], v.resources, alloc);
    const shared = new Set(victimChain.filter((k) => this.chainOf(jobLeaf).includes(k)));
    return (
      victimChain.every((k) => shared.has(k) || this.borrowed(k, v.resources, alloc)) &&
      this.chainOf(jobLeaf).every((k) => shared.has(k) || this.withinQuota(k, alloc, request))
    );
  }

  /** Taking `amount` away leaves the queue at or above its quota in every quota dimension the amount uses. */
  private borrowed(key: string, amount: Resources, alloc: Map<string, Resources>): boolean {
    const quota = this.tree.get(key)?.quota ?? ZERO_RESOURCES;
    const held = alloc.get(key) ?? ZERO_RESOURCES;
    return RESOURCE_DIMENSIONS.every((d) => quota[d] <= 0 || amount[d] <= 0 || held[d] - amount[d] >= quota[d]);
  }

  /**
   * The queue's quota covers the request (it has quota in a dimension the
   * request uses) and still holds with it added: allocated + request within
   * quota in every dimension the quota names.
   */
  private withinQuota(key: string, alloc: Map<string, Resources>, request: Resources): boolean {
    const quota = this.tree.get(key)?.quota ?? ZERO_RESOURCES;
    const held = alloc.get(key) ?? ZERO_RESOURCES;
    const named = RESOURCE_DIMENSIONS.filter((d) => quota[d] > 0);
    return named.some((d) => request[d] > 0) && named.every((d) => held[d] + request[d] <= quota[d]);
  }

  private withinLimits(leaf: string, alloc: Map<string, Resources>, request: Resources): boolean {
    return this.chainOf(leaf).every((k) => fitsQueueLimit(alloc.get(k) ?? ZERO_RESOURCES, request, this.tree.get(k)?.limit));
  }

  /** The tree key of a job's queue: a parent's own jobs go to its stand-in; an unknown queue is top-level without quota. */
  private leafOf(queue: string | undefined): string {
    const name = queue ?? DEFAULT_QUEUE;
    return this.tree.has(ownKey(name)) ? ownKey(name) : name;
  }

  /** The key and its ancestors, nearest first (cycles in bad data end the walk). */
  private chainOf(leaf: string): string[] {
    const chain = [leaf];
    for (let p = this.tree.get(leaf)?.parent; p !== undefined && !chain.includes(p); p = this.tree.get(p)?.parent) chain.push(p);
    return chain;
  }

  private addToChain(alloc: Map<string, Resources>, leaf: string, amount: Resources, sign: 1 | -1): void {
    for (const k of this.chainOf(leaf)) {
      const held = alloc.get(k) ?? ZERO_RESOURCES;
      alloc.set(k, sign === 1 ? addResources(held, amount) : subtractResources(held, amount));
    }
  }
}

function cloneNode(n: NodeView): NodeView {
  return { ...n, allocated: { ...n.allocated }, gpuFree: [...n.gpuFree] };
}

/**
 * Who goes first: the lowest priority, then the newest attempt (the least
 * work lost), then the highest job id (the newest submitted). Priority comes
 * first because evicting a more important job while a less important one
 * would do is never wanted.
 */
function victimOrder(a: RunningJob, b: RunningJob): number {
  return a.priority - b.priority || b.startedAt - a.startedAt || (a.jobId < b.jobId ? 1 : a.jobId > b.jobId ? -1 : 0);
}

/**
 * Fewest victims, then the lowest top victim priority, then the newest
 * oldest victim (the least work lost, as victims go newest first), then the
 * least capacity evicted; ties keep the lower node id.
 */
function compareCosts(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}
