import type { ResourceLimit } from '../../pkg/model/queue.js';
import { addResources, dominantShare, RESOURCE_DIMENSIONS, type ResourceDimension, type Resources } from '../../pkg/model/resources.js';
import { buildTree, EPS, zero, type TreeNode } from './queue-tree.js';

/**
 * Fair sharing of the cluster between queues (docs/queues.md), as pure
 * functions over numbers: no etcd, no clock.
 *
 * - fairShares: what each queue should hold now. First every queue gets its
 *   quota, as far as it has demand (deserved share); then idle capacity is
 *   lent to queues with demand left, by weighted dominant resource fairness.
 * - queueOrder / FairShareOrder (queue-order.ts): which queue is offered the
 *   next placement, so that allocations move towards those shares.
 *
 * Hierarchy: a parent queue (department) competes with the other top-level
 * queues for the cluster with its whole subtree's demand; what it gets is
 * then divided among its children (teams) by the same rules. So a parent's
 * share — at least its quota, when its teams want it — bounds what its
 * children together get; jobs submitted to the parent itself compete there
 * like one more child with no quota and weight 1. The same rules apply at
 * any depth, although queues are validated to two levels.
 */


/** A queue's parameters and load, as fairShares needs them. */
export interface QueueDemand {
  name: string;
  parent?: string;
  quota: Resources;
  limit?: ResourceLimit;
  weight: number;
  /**
   * What the queue's own jobs (not its children's) hold now plus what its
   * pending jobs request.
   */
  demand: Resources;
}

/** A queue's parameters and current allocation, as the ordering needs them. */
export interface QueueState {
  name: string;
  parent?: string;
  quota: Resources;
  limit?: ResourceLimit;
  weight: number;
  /** What the queue's own jobs (not its children's) hold now. */
  allocated: Resources;
  /** From fairShares: for a parent, its whole subtree's share. */
  fairShare: Resources;
}

/** Whether a request still fits under a limit given what is allocated; an absent dimension is uncapped. */
export function fitsQueueLimit(allocated: Resources, request: Resources, limit: ResourceLimit | undefined): boolean {
  if (!limit) return true;
  return RESOURCE_DIMENSIONS.every((d) => limit[d] === undefined || allocated[d] + request[d] <= (limit[d] as number));
}

// ---- fair shares -----------------------------------------------------------

function capAt(amount: Resources, limit: ResourceLimit | undefined): Resources {
  if (!limit) return amount;
  const out = { ...amount };
  for (const d of RESOURCE_DIMENSIONS) if (limit[d] !== undefined) out[d] = Math.min(out[d], limit[d] as number);
  return out;
}

interface Claim {
  quota: Resources;
  weight: number;
  /** Demand already capped at the queue's limit. */
  demand: Resources;
}

/**
 * Divides `available` among claims: quotas first (with the CPU and memory
 * that go with a GPU quota's share of the demand; scaled down together where
 * quotas oversubscribe what is available), then the rest by weighted
 * progressive filling (DRF): every queue with unmet demand grows along its
 * unmet demand, its dominant share (relative to the cluster) rising at a
 * rate proportional to its weight, until its demand is met or a resource it
 * needs runs out. Dominant shares are measured against `cluster`, so shares
 * mean the same at every level of the tree.
 */
function divide(available: Resources, claims: readonly Claim[], cluster: Resources): Resources[] {
  const deserved = claims.map((c) => {
    // A quota names some dimensions (often only GPUs), but the jobs it covers also need the
    // others: the covered fraction of the demand comes with its CPU and memory.
    let covered = 0;
    let first = true;
    for (const d of RESOURCE_DIMENSIONS) {
      if (c.quota[d] <= 0 || c.demand[d] <= 0) continue;
      covered = first ? Math.min(1, c.quota[d] / c.demand[d]) : Math.min(covered, c.quota[d] / c.demand[d]);
      first = false;
    }
    const out = zero();
    for (const d of RESOURCE_DIMENSIONS) out[d] = Math.max(0, Math.min(c.quota[d], c.demand[d]), covered * c.demand[d]);
    return out;
  });
  for (const d of RESOURCE_DIMENSIONS) {
    const total = deserved.reduce((s, r) => s + r[d], 0);
    if (total > available[d]) for (const r of deserved) r[d] *= Math.max(0, available[d]) / total;
  }
  const remaining = zero();
  for (const d of RESOURCE_DIMENSIONS) remaining[d] = Math.max(0, available[d] - deserved.reduce((s, r) => s + r[d], 0));

  // Growth direction u (unmet demand scaled to dominant share 1) and how far each may grow (tmax).
  const unit = claims.map((c, i) => {
    const unmet = zero();
    for (const d of RESOURCE_DIMENSIONS) unmet[d] = Math.max(0, c.demand[d] - deserved[i][d]);
    const dom = dominantShare(unmet, cluster);
    const u = zero();
    if (dom > 0) for (const d of RESOURCE_DIMENSIONS) u[d] = unmet[d] / dom;
    return { u, tmax: c.weight > 0 ? dom : 0 };
  });
  const t = claims.map(() => 0);
  const active = new Set(claims.map((_, i) => i).filter((i) => unit[i].tmax > 0));
  // Each round ends at least one queue's growth: at most one round per queue.
  for (let round = 0; active.size > 0 && round <= claims.length; round++) {
    const rate = zero();
    for (const i of active) for (const d of RESOURCE_DIMENSIONS) rate[d] += claims[i].weight * unit[i].u[d];
    let step = Infinity;
    for (const i of active) step = Math.min(step, (unit[i].tmax - t[i]) / claims[i].weight);
    for (const d of RESOURCE_DIMENSIONS) if (rate[d] > 0) step = Math.min(step, remaining[d] / rate[d]);
    step = Math.max(0, step);
    for (const i of active) t[i] += claims[i].weight * step;
    const exhausted = new Set<ResourceDimension>();
    for (const d of RESOURCE_DIMENSIONS) {
      if (rate[d] === 0) continue;
      remaining[d] -= rate[d] * step;
      if (remaining[d] <= EPS * Math.max(1, available[d], rate[d] * step)) exhausted.add(d);
    }
    for (const i of [...active]) {
      const done = unit[i].tmax - t[i] <= EPS * Math.max(1, unit[i].tmax);
      const starved = [...exhausted].some((d) => unit[i].u[d] > 0);
      if (done) t[i] = unit[i].tmax;
      if (done || starved) active.delete(i);
    }
  }
  return claims.map((_, i) => {
    const out = zero();
    for (const d of RESOURCE_DIMENSIONS) out[d] = deserved[i][d] + t[i] * unit[i].u[d];
    return out;
  });
}

/**
 * Each queue's fair share of `capacity` (the sum of registered nodes'
 * capacity) given its demand: never above its demand or its limit. For a
 * parent, the share of its whole subtree. Queues missing from the result
 * have none (there are none). Amounts are rounded to whole units.
 */
export function fairShares(capacity: Resources, queues: readonly QueueDemand[]): Map<string, Resources> {
  const out = new Map<string, Resources>();
  const roots = buildTree(queues, (q) => ({ ...q, quota: zero(), limit: undefined, weight: 1 }));
  const demandOf = new Map<TreeNode<QueueDemand>, Resources>();
  const effective = (n: TreeNode<QueueDemand>): Resources => {
    // A parent's own demand is carried by its stand-in child.
    const own = n.children.length > 0 ? zero() : n.queue.demand;
    const total = capAt(n.children.map(effective).reduce((sum, r) => addResources(sum, r), own), n.queue.limit);
    demandOf.set(n, total);
    return total;
  };
  roots.forEach(effective);
  const assign = (level: TreeNode<QueueDemand>[], available: Resources): void => {
    const claims = level.map((n) => ({ quota: n.queue.quota, weight: n.queue.weight, demand: demandOf.get(n) as Resources }));
    const shares = divide(available, claims, capacity);
    level.forEach((n, i) => {
      if (!n.own) out.set(n.name, roundResources(shares[i]));
      if (n.children.length > 0) assign(n.children, shares[i]);
    });
  };
  assign(roots, capacity);
  return out;
}

function roundResources(r: Resources): Resources {
  return { cpu: Math.round(r.cpu), memory: Math.round(r.memory), gpuMilli: Math.round(r.gpuMilli) };
}
