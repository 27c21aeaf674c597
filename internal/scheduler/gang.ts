import { gpuDeviceId, MILLI_PER_GPU } from '../../pkg/model/index.js';
import { allocate, chooseGpuIndexes } from './allocation.js';
import { firstRejection } from './feasibility.js';
import { chooseNode, isPlaced } from './place.js';
import type { Policy } from './policy.js';
import { copyPorts, freePortCount, lowestFreePort, newNodePorts } from './ports.js';
import { pendingReason } from './reasons.js';
import type { JobRequest, NodeView } from './types.js';

/** One replica's place: what the master allocates and writes for it. */
export interface GangPlacement {
  jobId: string;
  nodeId: string;
  gpuDevices: string[];
  /** The port of the node's --port-range the replica holds: each replica needs one free port. */
  port: number;
}

export interface PlaceGangOptions {
  /** Place nothing unless at least this many replicas fit at once (values below 1 count as 1). */
  minAvailable: number;
  /** Node label key: prefer nodes sharing one value of it (one rack), else any nodes. */
  topology?: string;
}

/** The gang (or at least minAvailable of it) fits: placements in the order of the replicas given. */
export interface GangPlaced {
  placements: GangPlacement[];
  /** How many distinct nodes the placements use. */
  nodeCount: number;
  /** The topology label's value all placements share, when they are within one domain. */
  domain?: string;
}

/** Not enough replicas fit: nothing is placed. `fitting` is how many would fit now. */
export interface GangWaits {
  reason: string;
  fitting: number;
}

export type GangResult = GangPlaced | GangWaits;

export function isGangPlaced(result: GangResult): result is GangPlaced {
  return (result as GangPlaced).placements !== undefined;
}

/**
 * Places a gang all-or-nothing on the snapshot, which it leaves untouched:
 * it plans on copies of the nodes, and the caller allocates the returned
 * placements (as it does a PassPlacer choice) and commits them in ONE
 * transaction.
 *
 * `replicas` are the replicas to place, in rank order. Every one is placed if
 * possible; otherwise as many as fit, if that is at least `minAvailable`
 * (the others stay Pending for the caller to place later, e.g. with
 * minAvailable 1); otherwise none.
 *
 * The gang packs onto as few nodes as possible: the node that can take the
 * most remaining replicas is filled first, and once one node can take all
 * that remain, the policy's best such node takes them (a tight fit under
 * binpack). Replicas with consecutive ranks thus share nodes. With a topology
 * key each domain (nodes with one value of the label) is planned on its own,
 * and the choice is: most replicas placed, then within one domain rather
 * than across domains, then fewest nodes, then the lowest domain value.
 */
export function placeGang(
  replicas: readonly JobRequest[],
  nodes: readonly NodeView[],
  policy: Policy,
  options: PlaceGangOptions,
): GangResult {
  const needed = Math.max(1, options.minAvailable);
  const plan = bestPlan(replicas, nodes, policy, options.topology);
  if (plan.placements.length >= needed && plan.placements.length > 0) {
    return {
      placements: plan.placements,
      nodeCount: plan.nodeCount,
      ...(plan.domain !== undefined ? { domain: plan.domain } : {}),
    };
  }
  return { reason: waitingReason(replicas, nodes, policy, plan.placements.length, needed), fitting: plan.placements.length };
}

interface Plan {
  placements: GangPlacement[];
  nodeCount: number;
  domain?: string;
}

function bestPlan(replicas: readonly JobRequest[], nodes: readonly NodeView[], policy: Policy, topology: string | undefined): Plan {
  let best: Plan | undefined;
  if (topology !== undefined) {
    for (const [domain, members] of domainsOf(nodes, topology)) {
      const plan: Plan = { ...planOn(replicas, members, policy), domain };
      if (!best || betterPlan(plan, best)) best = plan;
    }
    if (best && best.placements.length === replicas.length) return best;
  }
  // Across every node: more replicas than any one domain holds, or no topology asked for.
  const anywhere = planOn(replicas, nodes, policy);
  return best && !betterPlan(anywhere, best) ? best : anywhere;
}

function betterPlan(a: Plan, b: Plan): boolean {
  if (a.placements.length !== b.placements.length) return a.placements.length > b.placements.length;
  if ((a.domain !== undefined) !== (b.domain !== undefined)) return a.domain !== undefined;
  if (a.nodeCount !== b.nodeCount) return a.nodeCount < b.nodeCount;
  return (a.domain ?? '') < (b.domain ?? '');
}

/** Nodes grouped by the value of one label; unlabelled nodes belong to no domain. */
function domainsOf(nodes: readonly NodeView[], key: string): Map<string, NodeView[]> {
  const domains = new Map<string, NodeView[]>();
  for (const node of nodes) {
    const value = node.labels[key];
    if (value === undefined) continue;
    const members = domains.get(value);
    if (members) members.push(node);
    else domains.set(value, [node]);
  }
  return domains;
}

/** A node the plan may change: the snapshot's node is never touched. */
function copyOf(node: NodeView): NodeView {
  return { ...node, allocated: { ...node.allocated }, gpuFree: [...node.gpuFree], ports: copyPorts(node.ports) };
}

/**
 * How many of `replicas`, in order, fit on the node together (stops at the
 * first that does not): each needs its resources and one free port. Uses
 * the plain device choice: cheap, and for whole GPUs it is exactly what any
 * policy can fit.
 */
function countFitting(replicas: readonly JobRequest[], node: NodeView): number {
  // Ports are counted, not taken: the trial shares the node's (allocate without a port leaves them alone).
  const trial: NodeView = { ...node, allocated: { ...node.allocated }, gpuFree: [...node.gpuFree] };
  const ports = freePortCount(node.ports);
  let n = 0;
  for (const job of replicas) {
    if (n >= ports) break;
    const indexes = firstRejection(job, trial) ? undefined : chooseGpuIndexes(job, trial);
    if (!indexes) break;
    allocate(trial, job.resources, indexes.map((i) => gpuDeviceId(trial.gpus[i])));
    n++;
  }
  return n;
}

/** Allocates replicas in order on a (copied) node while they fit, with the policy's device choice and the lowest free port. */
function fill(replicas: readonly JobRequest[], node: NodeView, policy: Policy): GangPlacement[] {
  const out: GangPlacement[] = [];
  for (const job of replicas) {
    if (firstRejection(job, node)) break;
    const port = lowestFreePort(node.ports);
    if (port === undefined) break;
    const indexes = policy.chooseGpuIndexes?.(job, node) ?? chooseGpuIndexes(job, node);
    if (!indexes) break;
    const gpuDevices = indexes.map((i) => gpuDeviceId(node.gpus[i]));
    allocate(node, job.resources, gpuDevices, port);
    out.push({ jobId: job.id, nodeId: node.id, gpuDevices, port });
  }
  return out;
}

function shapeOf(job: JobRequest): string {
  const r = job.resources;
  return `${job.kind}|${r.cpu}|${r.memory}|${r.gpuMilli}|${job.gpuModels?.join('|') ?? ''}|${JSON.stringify(job.nodeSelector ?? {})}`;
}

/**
 * The greedy packing over one set of nodes (see placeGang). Each step takes
 * the unused node holding the most remaining replicas (so one holding them
 * all wins), then the policy's best, then the lowest id, so a snapshot always
 * gives the same plan. A node is filled on a copy and not considered again,
 * so the nodes never filled stay as they were: for replicas of one shape (the
 * usual gang) their capacity and score are computed once, not every step.
 */
function planOn(replicas: readonly JobRequest[], nodes: readonly NodeView[], policy: Policy): Plan {
  const shape = replicas.length > 0 ? shapeOf(replicas[0]) : '';
  const uniform = replicas.every((r) => shapeOf(r) === shape);
  const capacity = new Map<NodeView, number>();
  const scores = new Map<NodeView, number>();
  const countOf = (node: NodeView, remaining: readonly JobRequest[]): number => {
    if (!uniform) return countFitting(remaining, node);
    let cap = capacity.get(node);
    if (cap === undefined) capacity.set(node, (cap = countFitting(replicas, node)));
    return Math.min(cap, remaining.length);
  };
  const scoreOf = (node: NodeView, job: JobRequest): number => {
    let score = uniform ? scores.get(node) : undefined;
    if (score === undefined) scores.set(node, (score = policy.score(job, node)));
    return score;
  };

  const used = new Set<NodeView>();
  const placements: GangPlacement[] = [];
  let remaining = replicas;
  while (remaining.length > 0) {
    let best: NodeView | undefined;
    let bestCount = 0;
    for (const node of nodes) {
      if (used.has(node)) continue;
      const count = countOf(node, remaining);
      if (count === 0 || count < bestCount) continue;
      if (best && count === bestCount) {
        const a = scoreOf(node, remaining[0]);
        const b = scoreOf(best, remaining[0]);
        if (a < b || (a === b && node.id > best.id)) continue;
      }
      best = node;
      bestCount = count;
    }
    if (!best) break;
    used.add(best);
    const placed = fill(remaining, copyOf(best), policy);
    placements.push(...placed);
    remaining = remaining.slice(placed.length);
  }
  return { placements, nodeCount: new Set(placements.map((p) => p.nodeId)).size };
}

/**
 * Why a gang waits: how many replicas fit now against how many it needs,
 * and what blocks a single replica, or that ports are what is short.
 */
function waitingReason(replicas: readonly JobRequest[], nodes: readonly NodeView[], policy: Policy, fitting: number, needed: number): string {
  const size = replicas.length;
  if (nodes.length === 0) return 'gang waits for a node: no worker is registered';
  if (size < needed) return `gang waits: only ${size} replicas left to place, fewer than the ${needed} it needs at once`;
  const idleNodes = nodes.map(idleCopy);
  const idle = planOn(replicas, idleNodes, policy).placements.length;
  if (idle < needed) {
    const short = portsShort(replicas, idleNodes, policy, idle);
    const detail = short > 0 ? `; ${short} more would fit but for ports: their nodes' --port-range is too small` : idle === 0 ? singleReason(replicas[0], nodes, policy) : '';
    return `gang waits for more nodes: even with every node idle only ${idle} of ${size} replicas fit (needs ${needed})${detail}`;
  }
  const short = portsShort(replicas, nodes, policy, fitting);
  const detail = short > 0 ? `; ${short} more would fit but for ports: every port of their nodes' --port-range is held` : fitting === 0 ? singleReason(replicas[0], nodes, policy) : '';
  return `gang waits: ${fitting} of ${size} replicas fit now (needs ${needed})${detail}`;
}

/** How many more replicas than `fitting` would fit if ports were no limit; 0 when every node has a free port per replica (the usual case, checked first). */
function portsShort(replicas: readonly JobRequest[], nodes: readonly NodeView[], policy: Policy, fitting: number): number {
  if (nodes.every((n) => freePortCount(n.ports) >= replicas.length)) return 0;
  const plenty = nodes.map((n) => ({ ...n, ports: newNodePorts({ first: 1, last: 65535 }) }));
  return Math.max(0, planOn(replicas, plenty, policy).placements.length - fitting);
}

/** When not even one replica fits, the usual pending reason says what blocks it. */
function singleReason(replica: JobRequest, nodes: readonly NodeView[], policy: Policy): string {
  const one = chooseNode(replica, nodes, policy);
  return isPlaced(one) ? '' : `; a single replica: ${pendingReason(replica, one, nodes)}`;
}

/** The node with nothing allocated: what the gang could get once the cluster drains. */
function idleCopy(node: NodeView): NodeView {
  return {
    ...node,
    allocated: { cpu: 0, memory: 0, gpuMilli: 0 },
    gpuFree: node.gpus.map(() => MILLI_PER_GPU),
    ports: newNodePorts({ first: node.ports.first, last: node.ports.last }),
  };
}
