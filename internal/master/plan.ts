import { assertTransition, type Assignment, type Job, type Queue } from '../../pkg/model/index.js';
import type { Placement } from '../../pkg/store/index.js';
import { MAX_REASON_UPDATES, planPass, type JobRequest, type PassPlacement, type PassPlan, type Policy, type ReasonUpdate as PassReasonUpdate } from '../scheduler/index.js';
import type { ClusterState } from './cluster-state.js';
import { storedJob, type PendingJob } from './pending-job.js';

/** A placement of the pass, as the committer writes it. */
export interface PlannedPlacement extends PassPlacement<PendingJob> {
  /** The node registration the pass saw; a re-registered or departed node fails the commit. */
  nodeCreateRevision: string;
}

export type ReasonUpdate = PassReasonUpdate<PendingJob>;

/** The scheduling pass's plan (internal/scheduler/pass.ts), its placements fenced by the node registrations the pass saw. */
export interface Plan extends Omit<PassPlan<PendingJob>, 'placements'> {
  placements: PlannedPlacement[];
}

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
 * The master's scheduling pass: the scheduler's planPass over the master's
 * snapshot, every placement then tied to the registration of its node as
 * the pass saw it (read before anything can change the snapshot).
 */
export function planMasterPass(
  state: ClusterState,
  policy: Policy,
  busy: ReadonlySet<string>,
  now = Date.now(),
  queues: readonly Queue[] = [],
  sampleSize?: number,
): Plan {
  const reservations = state.evictionHolds.active(now, state.pending);
  const plan = planPass(state, policy, { now, queues, busy, reservations, ...(sampleSize === undefined ? {} : { sampleSize }) });
  // The pass placed on the snapshot's own nodes, synchronously: every one is there (an unknown one would fail its commit).
  const placements = plan.placements.map((p): PlannedPlacement => ({ ...p, nodeCreateRevision: state.nodes.get(p.nodeId)?.createRevision ?? '' }));
  // Jobs waiting for others are not in the pass's order: their reasons change when some of the jobs they wait for end.
  const offered = new Set(plan.reasonUpdates.map((u) => u.job.id));
  const dependencyReasons = state.dependencyReasons(MAX_REASON_UPDATES, busy).filter((u) => !offered.has(u.job.id));
  const truncated = plan.truncated || state.dependencies.reasonsDue.size > 0;
  return { ...plan, placements, reasonUpdates: [...plan.reasonUpdates, ...dependencyReasons], truncated };
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
    ...(p.port !== undefined ? { port: p.port } : {}),
    ...(p.group && scheduled.gang ? { rank: scheduled.gang.rank } : {}),
    ...(p.localRank !== undefined ? { localRank: p.localRank } : {}),
    ...(scheduled.timeoutMs !== undefined ? { timeoutMs: scheduled.timeoutMs } : {}),
  };
  if (scheduled.reason !== undefined) delete scheduled.reason;
  if (scheduled.reasonAt !== undefined) delete scheduled.reasonAt;
  if (scheduled.retryAt !== undefined) delete scheduled.retryAt;
  assertTransition(scheduled, 'Scheduled'); // in place, not transition(): see above
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
