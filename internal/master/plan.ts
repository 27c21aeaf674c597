import type { Assignment, Job } from '../../pkg/model/index.js';
import type { Placement, Versioned } from '../../pkg/store/index.js';
import { isPlaced, PassPlacer, pendingReason, type JobRequest, type Policy } from '../scheduler/index.js';
import type { ClusterState } from './cluster-state.js';
import { compareQueueOrder } from './queue-order.js';

export interface ReasonUpdate {
  job: Versioned<Job>;
  next: Job;
}

export interface Plan {
  placements: Placement[];
  /** The pass stopped at MAX_PLACEMENTS_PER_PASS; more may fit. */
  truncated: boolean;
  reasonUpdates: ReasonUpdate[];
  stillPending: number;
  /** Earliest time a job held back by retry backoff becomes eligible. */
  nextRetryAt?: number;
}

/** Reason writes per pass are capped: the queue's head matters, and etcd's write budget goes to placements. */
const MAX_REASON_UPDATES = 256;

/**
 * Placements per pass are capped so the first commits start while the rest
 * of a long queue is still being planned; the master runs another pass at once.
 */
export const MAX_PLACEMENTS_PER_PASS = 2048;

export function requestOf(job: Job): JobRequest {
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
export function planPass(state: ClusterState, policy: Policy, busy: ReadonlySet<string>, now = Date.now()): Plan {
  // Jobs whose placement is still being committed are not planned again.
  const queue = [...state.pending.values()].filter((j) => !busy.has(j.value.id));
  queue.sort((a, b) => compareQueueOrder(a.value, b.value));
  const nodes = state.nodeViews();
  const placer = new PassPlacer(nodes, policy);
  const placements: Placement[] = [];
  const reasonUpdates: ReasonUpdate[] = [];
  let stillPending = 0;
  let nextRetryAt: number | undefined;

  let truncated = false;
  for (const job of queue) {
    if (placements.length >= MAX_PLACEMENTS_PER_PASS) {
      truncated = true;
      break;
    }
    const retryAt = job.value.retryAt;
    if (retryAt !== undefined && retryAt > now) {
      nextRetryAt = Math.min(nextRetryAt ?? retryAt, retryAt);
      stillPending++;
      continue;
    }
    const request = requestOf(job.value);
    const result = placer.place(request);
    if (isPlaced(result)) {
      const node = state.nodes.get(result.nodeId);
      if (!node) continue;
      const assignment: Assignment = {
        jobId: job.value.id,
        nodeId: result.nodeId,
        attempt: job.value.attempt + 1,
        resources: job.value.resources,
        gpuDevices: result.gpuDevices,
        assignedAt: now,
      };
      state.recordAllocation(assignment);
      const { reason: _previousReason, retryAt: _retryAt, ...placed } = job.value;
      const scheduled: Job = {
        ...placed,
        state: 'Scheduled',
        node: result.nodeId,
        attempt: assignment.attempt,
        gpuDevices: result.gpuDevices,
        scheduledAt: now,
      };
      placements.push({ job, scheduled, assignment, nodeCreateRevision: node.createRevision });
      continue;
    }
    stillPending++;
    if (reasonUpdates.length >= MAX_REASON_UPDATES) continue;
    const reason = pendingReason(request, result, nodes);
    if (reason !== job.value.reason) reasonUpdates.push({ job, next: { ...job.value, reason } });
  }
  return { placements, reasonUpdates, stillPending, nextRetryAt, truncated };
}
