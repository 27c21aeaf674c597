import { gangPeers, queueOf, type GangMember, type GangSpec, type JobKind, type Queue, type Resources } from '../../pkg/model/index.js';
import type { GangAllocation, PlacedJobFields } from './allocation-book.js';
import { Reservation, type BackfillJob, type ReservationSnapshot } from './backfill.js';
import { HeldNodes, type EvictionReservation } from './eviction-reservations.js';
import type { QueuedJob } from './queue-order.js';
import { isGangPlaced, placeGang } from './gang.js';
import { PassPlacer } from './pass-placer.js';
import { passOrder } from './pass-order.js';
import { isPlaced } from './place.js';
import type { Policy } from './policy.js';
import { arrayLimitReason, pendingReason } from './reasons.js';
import { capacityReasonDueAt, memoizedGist, reasonDueAt, ShapeReason } from './reason-timing.js';
import type { JobRequest, NoPlacement } from './types.js';

/**
 * A pending job as a pass takes it: what placement, the queue order,
 * backfill, gangs and reasons read. The master's PendingJob and the
 * simulator's replayed jobs are PassJobs.
 */
export interface PassJob extends JobRequest, QueuedJob, BackfillJob, PlacedJobFields {
  kind: JobKind;
  createdAt: number;
  /** A retry backoff: not placed before then. */
  retryAt: number | undefined;
  /** The reason the job last got, and when (a reason's figures are rewritten at most every REASON_REFRESH_MS). */
  reason: string | undefined;
  reasonAt: number | undefined;
  /** An array task: its array, and `%max` (how many of its tasks may be placed or running at once). */
  array?: { id: string; max?: number };
}

/**
 * The snapshot a pass plans over: the nodes (views mutated in place by
 * allocations), what runs on them, and the pending jobs. The master adapts
 * its ClusterState to it; the simulator keeps one in memory
 * (internal/simulate/replay-snapshot.ts).
 */
export interface PassSnapshot<J extends PassJob> extends ReservationSnapshot {
  /** Pending jobs by id; a job is current only while `pending.get(job.id) === job`. */
  readonly pending: ReadonlyMap<string, J>;
  /** The pending jobs by compareJobsInQueue (it may still hold jobs no longer current). */
  queue(): readonly J[];
  /** Where gang peers reach each node's jobs (peerAddressOf), by node id. */
  addresses(): ReadonlyMap<string, string>;
  /** What each queue's placed and running jobs hold. */
  allocatedByQueue(): ReadonlyMap<string, Resources>;
  /** The nodes' capacity, summed. */
  capacity(): Readonly<Resources>;
  /** The placed or running replicas of a gang (those being evicted included). */
  gangAllocations(gangId: string): GangAllocation[];
  /** How many tasks of an array are placed or running (those being evicted included). */
  arrayAllocations(arrayId: string): number;
  /**
   * Records a placement of this pass at once, so the rest of the pass sees it
   * (an allocation on the node, held by the job's queue); `port` is the one a gang replica got.
   */
  allocatePlaced(job: J, nodeId: string, gpuDevices: readonly string[], now: number, port?: number): void;
  /**
   * Why a pending job may not be placed yet, whatever the capacity: it waits
   * for other jobs (`--after`; the master's DependencyIndex knows). Absent or
   * undefined: it may be placed.
   */
  blockedReason?(job: J): string | undefined;
}

/** A job the pass placed: allocated in the snapshot at once. */
export interface PassPlacement<J extends PassJob> {
  job: J;
  nodeId: string;
  gpuDevices: string[];
  assignedAt: number;
  /** A gang's id: its placements commit together, all or none. */
  group?: string;
  /** host:port of every replica of the gang, by rank. */
  peers?: string[];
  /** A gang replica's port on the node (its --port-range). */
  port?: number;
  /** A gang replica's place among the gang's replicas on the node, in rank order. */
  localRank?: number;
}

export interface ReasonUpdate<J extends PassJob> {
  job: J;
  reason: string;
}

/** A running replica to stop because a sibling failed: the gang restarts together. */
export interface GangRestart {
  jobId: string;
  nodeId: string;
  attempt: number;
  reason: string;
}

export interface PassPlan<J extends PassJob> {
  placements: PassPlacement<J>[];
  /** The pass stopped at MAX_PLACEMENTS_PER_PASS; more may fit. */
  truncated: boolean;
  reasonUpdates: ReasonUpdate<J>[];
  stillPending: number;
  gangRestarts: GangRestart[];
  /** Jobs that fit nowhere now, in offer order (at most MAX_PREEMPTION_CANDIDATES): preemption may make room for them (planEvictions). */
  unplaced: J[];
  /** When a pass next has work no event announces: a retry backoff ends, or a held-back reason falls due. */
  nextPassAt?: number;
}

export interface PassInput {
  now: number;
  /** Every stored queue (the default one may be left out). */
  queues: readonly Queue[];
  /** Jobs not to plan: their placement is still being committed. */
  busy?: ReadonlySet<string>;
  /**
   * A placer kept from pass to pass (its sampled scan goes on where the last
   * pass stopped). The master starts each pass with a new one; the FGD
   * protocol run, one arriving task per pass, keeps one for the whole run.
   */
  placer?: PassPlacer;
  /** Feasible nodes scored per job when the pass makes its placer (--sample-nodes; Infinity: all); absent, feasibleNodesToScore. */
  sampleSize?: number;
  /**
   * Whether the first job that fits nowhere gets a node reserved (backfill.ts;
   * default true). The FGD protocol run drops such a task: nothing waits for the node.
   */
  backfill?: boolean;
  /** Nodes held for the jobs evictions were for (EvictionReservations.active): no other job goes there this pass. */
  reservations?: readonly EvictionReservation[];
}

/** Reason writes per pass are capped: the queue's head matters, and etcd's write budget goes to placements. */
export const MAX_REASON_UPDATES = 256;

/**
 * Placements per pass are capped so the first commits start while the rest
 * of a long queue is still being planned; the master runs another pass at once.
 */
export const MAX_PLACEMENTS_PER_PASS = 2048;

/** The head of the jobs that did not fit: the ones preemption is tried for. */
export const MAX_PREEMPTION_CANDIDATES = 16;

const NOTHING_BUSY: ReadonlySet<string> = new Set();

/**
 * One scheduling pass over the snapshot: every pending job in queue order
 * goes through the placement pipeline; a placement is allocated in the
 * snapshot at once (so the next job sees it) and becomes part of the plan.
 * Jobs that fit nowhere get a reason. A job whose exact shape already failed
 * in this pass is not tried again (the placer remembers it): nothing freed up since.
 * No I/O and no clock: the same snapshot and input give the same plan.
 */
export function planPass<J extends PassJob>(state: PassSnapshot<J>, policy: Policy, input: PassInput): PassPlan<J> {
  const { now, queues } = input;
  const busy = input.busy ?? NOTHING_BUSY;
  const nodes = state.nodeViews();
  const placer = input.placer ?? new PassPlacer(nodes, policy, input.sampleSize === undefined ? {} : { sampleSize: input.sampleSize });
  const placements: PassPlacement<J>[] = [];
  const reasonUpdates: ReasonUpdate<J>[] = [];
  const unplaced: J[] = [];
  let stillPending = 0;
  let nextPassAt: number | undefined;
  const later = (at: number): void => {
    nextPassAt = Math.min(nextPassAt ?? at, at);
  };
  const gist = memoizedGist();
  // A shape that failed gets the same NoPlacement for the rest of the pass (PassPlacer): so does its reason.
  const reasonOf = new Map<NoPlacement, ShapeReason>();
  const offerReason = (job: J, reason: string): void => {
    if (reason === job.reason || reasonUpdates.length >= MAX_REASON_UPDATES) return;
    const due = reasonDueAt(job, gist(reason), gist);
    if (due <= now) reasonUpdates.push({ job, reason });
    else later(due);
  };
  const blocked = state.blockedReason?.bind(state);
  const order = passOrder(state.queue(), state.pending, queues, state.allocatedByQueue(), state.capacity(), blocked && ((job: J) => blocked(job) !== undefined));

  let truncated = false;
  // The first job that fits nowhere gets a node reserved for the rest of the pass (backfill.ts).
  let reservation: Reservation | undefined;
  let position = 0;
  let gangs: Map<string, J[]> | undefined;
  const gangsDone = new Set<string>();
  const gangRestarts: GangRestart[] = [];
  const held = new HeldNodes(nodes, input.reservations ?? [], state.pending, busy);
  try {
    for (const job of order.jobs) {
      // Jobs that left the queue since it was ordered are skipped, and so are jobs whose placement is still being committed.
      if (state.pending.get(job.id) !== job || busy.has(job.id)) continue;
      // Waiting for other jobs: never placed, whatever fits; it says what it waits for.
      const waits = blocked?.(job);
      if (waits !== undefined) {
        stillPending++;
        offerReason(job, waits);
        continue;
      }
      if (job.gang) {
        // A gang is planned once per pass, as a whole, when its first replica comes up.
        if (gangsDone.has(job.gang.id)) continue;
        gangsDone.add(job.gang.id);
        gangs ??= pendingGangs(state, busy, blocked);
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
      // `%max`: the array's placed and running tasks, this pass's placements included, are counted in the snapshot.
      const max = job.array?.max;
      if (job.array && max !== undefined && state.arrayAllocations(job.array.id) >= max) {
        stillPending++;
        offerReason(job, arrayLimitReason(job.array.id, max));
        continue;
      }
      // Its node held since evictions made room for it: it goes there once the victims are gone.
      const placedOnHold = held.claim(job, (nodeId, gpuDevices) => {
        state.allocatePlaced(job, nodeId, gpuDevices, now);
        order.placed(job);
        placements.push({ job, nodeId, gpuDevices, assignedAt: now });
      });
      if (placedOnHold) continue;
      const result = placer.place(job);
      if (isPlaced(result)) {
        state.allocatePlaced(job, result.nodeId, result.gpuDevices, now);
        order.placed(job);
        placements.push({ job, nodeId: result.nodeId, gpuDevices: result.gpuDevices, assignedAt: now });
        continue;
      }
      if (reservation) {
        const devices = reservation.backfill(job, now);
        if (devices) {
          state.allocatePlaced(job, reservation.node.id, devices, now);
          order.placed(job);
          placements.push({ job, nodeId: reservation.node.id, gpuDevices: devices, assignedAt: now });
          continue;
        }
      }
      stillPending++;
      position++;
      const heldNode = held.nodeOf(job.id);
      if (heldNode !== undefined) {
        // Room is on its way: no more evictions for it, and no backfill reservation besides its hold.
        offerReason(job, `waiting for the jobs evicted for it to stop: node ${heldNode} is held for it`);
        continue;
      }
      if (unplaced.length < MAX_PREEMPTION_CANDIDATES) unplaced.push(job);
      let shapeReason = reasonOf.get(result);
      if (shapeReason === undefined) {
        shapeReason = new ShapeReason(pendingReason(job, result, nodes), gist);
        reasonOf.set(result, shapeReason);
      }
      let reason = shapeReason.text;
      if (!reservation && input.backfill !== false && (reservation = Reservation.for(job, state, now, held.nodes()))) {
        reservation.hold();
        const when = Number.isFinite(reservation.at) ? `by ${new Date(reservation.at).toISOString()}` : 'when the jobs there without a timeout end';
        reason += `; first in line: node ${reservation.node.id} is reserved for it, to start it ${when}`;
        const due = shapeReason.waitsForCapacity ? capacityReasonDueAt(job, now) : -Infinity;
        if (due > now) later(due);
        else offerReason(job, reason);
        continue;
      }
      if (shapeReason.waitsForCapacity) {
        // Known not due without building the text: most of a long queue, on every pass.
        const due = Math.max(capacityReasonDueAt(job, now), reasonDueAt(job, shapeReason.gistInQueue(queueOf(job)), gist));
        if (due > now) {
          later(due);
          continue;
        }
        // Capped: past the head of the queue, exact positions would rewrite many reasons on every pass.
        reason += `; #${position <= 100 ? position : '100+'} in queue ${queueOf(job)}`;
      }
      offerReason(job, reason);
    }
  } finally {
    reservation?.lift();
    held.liftAll();
  }
  for (const job of order.overLimit()) {
    if (busy.has(job.id)) continue;
    stillPending++;
    const reason = `waiting for queue ${queueOf(job)}: its limit is reached`;
    offerReason(job, reason);
  }
  return { placements, reasonUpdates, stillPending, nextPassAt, truncated, unplaced, gangRestarts };
}

/** The pending, not-in-flight, not-waiting replicas of every gang, by gang id, in rank order. */
function pendingGangs<J extends PassJob>(state: PassSnapshot<J>, busy: ReadonlySet<string>, blocked?: (job: J) => string | undefined): Map<string, J[]> {
  const gangs = new Map<string, J[]>();
  for (const job of state.pending.values()) {
    if (!job.gang || busy.has(job.id) || blocked?.(job) !== undefined) continue;
    const list = gangs.get(job.gang.id) ?? [];
    list.push(job);
    gangs.set(job.gang.id, list);
  }
  for (const list of gangs.values()) list.sort((a, b) => (a.gang?.rank ?? 0) - (b.gang?.rank ?? 0));
  return gangs;
}

/** What a pass does with one gang's pending replicas. */
interface GangStep<J extends PassJob> {
  placements?: PassPlacement<J>[];
  /** Running siblings to stop: a replica came back after a failed run, so the gang restarts together. */
  restarts?: GangRestart[];
  /** The gang waits for a replica's retry backoff until then. */
  retryAt?: number;
  reason?: string;
}

function gangStep<J extends PassJob>(state: PassSnapshot<J>, policy: Policy, replicas: readonly J[], now: number): GangStep<J> {
  const gangId = (replicas[0].gang as GangSpec).id;
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
 * already run) is allocated, each replica with a port of its node. The
 * placements share a group, so the committer writes them in one
 * transaction. Their peers list the siblings already running too (where a
 * restarted master knows their rank and port), and so does LOCAL_RANK.
 */
function planGang<J extends PassJob>(state: PassSnapshot<J>, policy: Policy, replicas: readonly J[], now: number): { placements: PassPlacement<J>[] } | { reason: string } {
  const gang = replicas[0].gang as GangSpec;
  const fresh = replicas.length === gang.size;
  const result = placeGang(replicas, state.nodeViews(), policy, {
    minAvailable: fresh ? gang.minAvailable : 1,
    ...(gang.topology ? { topology: gang.topology } : {}),
  });
  if (!isGangPlaced(result)) return { reason: result.reason };
  const addresses = state.addresses();
  const missing = result.placements.find((p) => !addresses.has(p.nodeId));
  if (missing) return { reason: `gang waits: node ${missing.nodeId} left` };
  const byId = new Map(replicas.map((r) => [r.id, r]));
  const members: GangMember[] = [];
  if (!fresh) {
    for (const a of state.gangAllocations(gang.id)) {
      if (!a.evicting && a.rank !== undefined && a.port !== undefined) members.push({ rank: a.rank, nodeId: a.nodeId, port: a.port });
    }
  }
  for (const p of result.placements) members.push({ rank: byId.get(p.jobId)?.gang?.rank ?? 0, nodeId: p.nodeId, port: p.port });
  const peers = gangPeers(gang.size, members, addresses);
  const placements: PassPlacement<J>[] = [];
  for (const p of result.placements) {
    const job = byId.get(p.jobId) as J;
    const rank = job.gang?.rank ?? 0;
    const localRank = members.filter((m) => m.nodeId === p.nodeId && m.rank < rank).length;
    state.allocatePlaced(job, p.nodeId, p.gpuDevices, now, p.port);
    placements.push({ job, nodeId: p.nodeId, gpuDevices: p.gpuDevices, assignedAt: now, group: gang.id, peers, port: p.port, localRank });
  }
  return { placements };
}
