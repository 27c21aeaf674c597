import { queueOf, type Assignment, type Job, type Queue } from '../../pkg/model/index.js';
import type { Placement } from '../../pkg/store/index.js';
import { gangPeers } from '../../pkg/model/index.js';
import { isGangPlaced, isPlaced, PassPlacer, pendingReason, placeGang, type JobRequest, type Policy } from '../scheduler/index.js';
import { storedJob, type ClusterState, type PendingJob } from './cluster-state.js';
import { Reservation } from './backfill.js';
import { passOrder } from './fair-order.js';

/** A job the pass placed: allocated in the snapshot at once, written by the committer. */
export interface PlannedPlacement {
  job: PendingJob;
  nodeId: string;
  gpuDevices: string[];
  /** The node registration the pass saw; a re-registered or departed node fails the commit. */
  nodeCreateRevision: string;
  assignedAt: number;
  /** A gang's id: its placements commit in one transaction, all or none. */
  group?: string;
  /** host:port of every replica of the gang, by rank. */
  peers?: string[];
}

export interface ReasonUpdate {
  job: PendingJob;
  reason: string;
}

export interface Plan {
  placements: PlannedPlacement[];
  /** The pass stopped at MAX_PLACEMENTS_PER_PASS; more may fit. */
  truncated: boolean;
  reasonUpdates: ReasonUpdate[];
  stillPending: number;
  /** Running replicas to stop because a sibling failed: their gang restarts together. */
  gangRestarts: { jobId: string; nodeId: string; attempt: number; reason: string }[];
  /** Jobs that fit nowhere now, in offer order (at most MAX_PREEMPTION_CANDIDATES): preemption may make room for them. */
  unplaced: PendingJob[];
  /** When a pass next has work no event announces: a retry backoff ends, or a held-back reason falls due. */
  nextPassAt?: number;
}

/** Reason writes per pass are capped: the queue's head matters, and etcd's write budget goes to placements. */
export const MAX_REASON_UPDATES = 256;

/**
 * A reason whose figures alone changed (a queue position, the most free on
 * a node) is rewritten at most this often. On a full cluster every ended job
 * moves every position in the queue, and each reason is a write of the whole
 * job: without this, one freed slot rewrote the head of the queue.
 */
export const REASON_REFRESH_MS = 10_000;

/** What a reason says, without its figures. */
const gist = (reason: string): string => reason.replace(/\d+(\.\d+)?/g, '#');

/** When a new `reason` may replace the job's: at once if it says something else, else REASON_REFRESH_MS after the last write. */
function reasonDueAt(job: PendingJob, reason: string): number {
  if (job.reason === undefined || job.reasonAt === undefined || gist(reason) !== gist(job.reason)) return -Infinity;
  return job.reasonAt + REASON_REFRESH_MS;
}

/**
 * Placements per pass are capped so the first commits start while the rest
 * of a long queue is still being planned; the master runs another pass at once.
 */
export const MAX_PLACEMENTS_PER_PASS = 2048;

/** The head of the jobs that did not fit: the ones preemption is tried for. */
export const MAX_PREEMPTION_CANDIDATES = 16;

export function requestOf(job: Pick<Job, 'id' | 'kind' | 'resources' | 'gpuModels' | 'nodeSelector'>): JobRequest {
  return {
    id: job.id,
    kind: job.kind,
    resources: job.resources,
    ...(job.gpuModels ? { gpuModels: job.gpuModels } : {}),
    ...(job.nodeSelector ? { nodeSelector: job.nodeSelector } : {}),
  };
}

/**
 * One scheduling pass over the snapshot: every pending job in queue order
 * goes through the placement pipeline; a placement is allocated in the
 * snapshot at once (so the next job sees it) and becomes part of the plan.
 * Jobs that fit nowhere get a reason. A job whose exact shape already failed
 * in this pass is not tried again (the placer remembers it): nothing freed up since.
 */
export function planPass(
  state: ClusterState,
  policy: Policy,
  busy: ReadonlySet<string>,
  now = Date.now(),
  queues: readonly Queue[] = [],
): Plan {
  const nodes = state.nodeViews();
  const placer = new PassPlacer(nodes, policy);
  const placements: PlannedPlacement[] = [];
  const reasonUpdates: ReasonUpdate[] = [];
  const unplaced: PendingJob[] = [];
  let stillPending = 0;
  let nextPassAt: number | undefined;
  const later = (at: number): void => {
    nextPassAt = Math.min(nextPassAt ?? at, at);
  };
  const offerReason = (job: PendingJob, reason: string): void => {
    if (reason === job.reason || reasonUpdates.length >= MAX_REASON_UPDATES) return;
    const due = reasonDueAt(job, reason);
    if (due <= now) reasonUpdates.push({ job, reason });
    else later(due);
  };
  const order = passOrder(state.queue(), state.pending, queues, state.allocatedByQueue(), state.capacity());

  let truncated = false;
  // The first job that fits nowhere gets a node reserved for the rest of the pass (backfill.ts).
  let reservation: Reservation | undefined;
  let position = 0;
  let gangs: Map<string, PendingJob[]> | undefined;
  const gangsDone = new Set<string>();
  const gangRestarts: Plan['gangRestarts'] = [];
  try {
    for (const job of order.jobs) {
      // Jobs that left the queue since it was ordered are skipped, and so are jobs whose placement is still being committed.
      if (state.pending.get(job.id) !== job || busy.has(job.id)) continue;
      if (job.gang) {
        // A gang is planned once per pass, as a whole, when its first replica comes up.
        if (gangsDone.has(job.gang.id)) continue;
        gangsDone.add(job.gang.id);
        gangs ??= pendingGangs(state, busy);
        const replicas = gangs.get(job.gang.id) ?? [job];
        const step = gangStep(state, policy, replicas, now);
        if (step.placements) {
          for (const p of step.placements) order.placed(p.job);
          placements.push(...step.placements);
        } else {
          stillPending += replicas.length;
          gangRestarts.push(...(step.restarts ?? []));
          if (step.retryAt !== undefined) later(step.retryAt);
          const reason = step.reason;
          if (reason !== undefined) for (const r of replicas) offerReason(r, reason);
        }
        continue;
      }
      if (placements.length >= MAX_PLACEMENTS_PER_PASS) {
        truncated = true;
        break;
      }
      const retryAt = job.retryAt;
      if (retryAt !== undefined && retryAt > now) {
        later(retryAt);
        stillPending++;
        continue;
      }
      const result = placer.place(job);
      if (isPlaced(result)) {
        const node = state.nodes.get(result.nodeId);
        if (!node) continue;
        state.allocatePlaced(job, result.nodeId, result.gpuDevices, now);
        order.placed(job);
        placements.push({ job, nodeId: result.nodeId, gpuDevices: result.gpuDevices, nodeCreateRevision: node.createRevision, assignedAt: now });
        continue;
      }
      if (reservation) {
        const devices = reservation.backfill(job, now);
        const node = state.nodes.get(reservation.node.id);
        if (devices && node) {
          state.allocatePlaced(job, node.view.id, devices, now);
          order.placed(job);
          placements.push({ job, nodeId: node.view.id, gpuDevices: devices, nodeCreateRevision: node.createRevision, assignedAt: now });
          continue;
        }
      }
      stillPending++;
      position++;
      if (unplaced.length < MAX_PREEMPTION_CANDIDATES) unplaced.push(job);
      let reason = pendingReason(job, result, nodes);
      if (!reservation && (reservation = Reservation.for(job, state, now))) {
        reservation.hold();
        const when = Number.isFinite(reservation.at) ? `by ${new Date(reservation.at).toISOString()}` : 'when the jobs there without a timeout end';
        reason += `; first in line: node ${reservation.node.id} is reserved for it, to start it ${when}`;
      } else if (reason.startsWith('waiting for capacity')) {
        // Capped: past the head of the queue, exact positions would rewrite many reasons on every pass.
        reason += `; #${position <= 100 ? position : '100+'} in queue ${queueOf(job)}`;
      }
      offerReason(job, reason);
    }
  } finally {
    reservation?.lift();
  }
  for (const job of order.overLimit()) {
    if (busy.has(job.id)) continue;
    stillPending++;
    const reason = `waiting for queue ${queueOf(job)}: its limit is reached`;
    offerReason(job, reason);
  }
  return { placements, reasonUpdates, stillPending, nextPassAt, truncated, unplaced, gangRestarts };
}

/** The pending, not-in-flight replicas of every gang, by gang id, in rank order. */
function pendingGangs(state: ClusterState, busy: ReadonlySet<string>): Map<string, PendingJob[]> {
  const gangs = new Map<string, PendingJob[]>();
  for (const job of state.pending.values()) {
    if (!job.gang || busy.has(job.id)) continue;
    const list = gangs.get(job.gang.id) ?? [];
    list.push(job);
    gangs.set(job.gang.id, list);
  }
  for (const list of gangs.values()) list.sort((a, b) => (a.gang?.rank ?? 0) - (b.gang?.rank ?? 0));
  return gangs;
}

/** What a pass does with one gang's pending replicas. */
interface GangStep {
  placements?: PlannedPlacement[];
  /** Running siblings to stop: a replica came back after a failed run, so the gang restarts together. */
  restarts?: Plan['gangRestarts'];
  /** The gang waits for a replica's retry backoff until then. */
  retryAt?: number;
  reason?: string;
}

function gangStep(state: ClusterState, policy: Policy, replicas: readonly PendingJob[], now: number): GangStep {
  const gangId = (replicas[0].gang as NonNullable<PendingJob['gang']>).id;
  // A replica back in the queue after a failed run while siblings still hold resources: they are
  // stopped, and the gang waits until every one of them has.
  const failed = replicas.find((r) => r.attempt > 0);
  const held = failed ? state.gangAllocations(gangId) : [];
  if (held.length > 0) {
    const reason = `Gang restart: replica ${failed?.gang?.rank ?? '?'} failed`;
    return { restarts: held.filter((h) => !h.evicting).map((h) => ({ jobId: h.jobId, nodeId: h.nodeId, attempt: h.attempt, reason })) };
  }
  const backoff = Math.max(...replicas.map((r) => r.retryAt ?? 0));
  if (backoff > now) return { retryAt: backoff };
  const planned = planGang(state, policy, replicas, now);
  return 'reason' in planned ? { reason: planned.reason } : { placements: planned.placements };
}

/**
 * A gang all or nothing: placeGang plans on copies of the snapshot; only a
 * plan holding at least minAvailable replicas (all pending ones, if some
 * already run) is allocated. The placements share a group, so the committer
 * writes them in one transaction.
 */
function planGang(state: ClusterState, policy: Policy, replicas: readonly PendingJob[], now: number): { placements: PlannedPlacement[] } | { reason: string } {
  const gang = replicas[0].gang as NonNullable<PendingJob['gang']>;
  const fresh = replicas.length === gang.size;
  const result = placeGang(replicas, state.nodeViews(), policy, {
    minAvailable: fresh ? gang.minAvailable : 1,
    ...(gang.topology ? { topology: gang.topology } : {}),
  });
  if (!isGangPlaced(result)) return { reason: result.reason };
  const byId = new Map(replicas.map((r) => [r.id, r]));
  const hostnames = new Map([...state.nodes].map(([id, n]) => [id, n.hostname]));
  const members = result.placements.map((p) => ({ rank: byId.get(p.jobId)?.gang?.rank ?? 0, nodeId: p.nodeId }));
  const peers = gangPeers(gang.size, members, hostnames);
  const missing = result.placements.find((p) => !state.nodes.has(p.nodeId));
  if (missing) return { reason: `gang waits: node ${missing.nodeId} left` };
  const placements: PlannedPlacement[] = [];
  for (const p of result.placements) {
    const job = byId.get(p.jobId) as PendingJob;
    const node = state.nodes.get(p.nodeId) as NonNullable<ReturnType<typeof state.nodes.get>>;
    state.allocatePlaced(job, p.nodeId, p.gpuDevices, now);
    placements.push({ job, nodeId: p.nodeId, gpuDevices: p.gpuDevices, nodeCreateRevision: node.createRevision, assignedAt: now, group: gang.id, peers });
  }
  return { placements };
}

/**
 * The transaction part of a planned placement: the job as stored, now
 * Scheduled on the node (its pending reason and retry time dropped), and the
 * node's assignment. Built from the stored value only when the placement is
 * about to be committed, so queued placements stay small. The value is
 * decoded afresh and changed in place (no copies: the committer builds
 * thousands of these a second); the transaction compares the job's key and
 * revision only, so `job.value` is that same Scheduled value. The assignment
 * is stored with that value as its `job` (Store.commitPlacements).
 */
export function placementWrite(p: PlannedPlacement, jobKey: string): Placement {
  const scheduled = storedJob(p.job);
  const attempt = scheduled.attempt + 1;
  // Stored with the Scheduled job's bytes as its `job` (Store.commitPlacements).
  const assignment: Omit<Assignment, 'job'> = {
    jobId: scheduled.id,
    nodeId: p.nodeId,
    attempt,
    resources: scheduled.resources,
    gpuDevices: p.gpuDevices,
    assignedAt: p.assignedAt,
    ...(scheduled.queue !== undefined ? { queue: scheduled.queue } : {}),
    ...(scheduled.priority !== 0 ? { priority: scheduled.priority } : {}),
    ...(scheduled.preemptible !== undefined ? { preemptible: scheduled.preemptible } : {}),
    ...(scheduled.minRuntimeMs !== undefined ? { minRuntimeMs: scheduled.minRuntimeMs } : {}),
    ...(p.peers ? { peers: p.peers } : {}),
    ...(p.group ? { gang: p.group } : {}),
    ...(scheduled.timeoutMs !== undefined ? { timeoutMs: scheduled.timeoutMs } : {}),
  };
  if (scheduled.reason !== undefined) delete scheduled.reason;
  if (scheduled.reasonAt !== undefined) delete scheduled.reasonAt;
  if (scheduled.retryAt !== undefined) delete scheduled.retryAt;
  scheduled.state = 'Scheduled';
  scheduled.node = p.nodeId;
  scheduled.attempt = attempt;
  scheduled.gpuDevices = p.gpuDevices;
  scheduled.scheduledAt = p.assignedAt;
  return {
    job: { key: jobKey, value: scheduled, modRevision: String(p.job.modRevision), createRevision: '' },
    scheduled,
    assignment,
    nodeCreateRevision: p.nodeCreateRevision,
  };
}
