import type { ICompare } from 'etcd3';
import type { Logger } from 'pino';
import { endAttempt, isFinal, type RetryPolicy } from '../../pkg/model/index.js';
import { txnCompare, txnOp, type Store } from '../../pkg/store/index.js';
import type { ClusterState } from './cluster-state.js';

const MAX_TRIES = 5;

/**
 * Requeues every attempt held by a node that is no longer registered (its
 * lease expired): the attempt goes into the job's history as lost and the
 * job returns to Pending under the node-lost retry budget, or fails when that
 * is spent. Each requeue is one transaction that holds only if the node is
 * still gone, the assignment and job are unchanged, and we still lead.
 */
export async function requeueLostAttempts(
  store: Store,
  state: ClusterState,
  guard: () => ICompare[],
  policy: RetryPolicy,
  logger: Logger,
): Promise<number> {
  let requeued = 0;
  for (const { jobId, nodeId } of state.orphanedAllocations()) {
    for (let tries = 0; tries < MAX_TRIES; tries++) {
      if (state.nodes.has(nodeId)) break; // it came back in time
      const assignment = await store.getAssignment(nodeId, jobId);
      if (!assignment) break; // already ended; the watch will release it
      const job = await store.getJob(jobId);
      const nodeGone = txnCompare.absent(store.keys.node(nodeId));
      if (!job || isFinal(job.value.state) || job.value.attempt !== assignment.value.attempt) {
        // A leftover assignment of an attempt that already ended: just drop it.
        await store.txn(
          [...guard(), nodeGone, txnCompare.createRevision(assignment.key, assignment.createRevision)],
          [txnOp.del(assignment.key)],
        );
        break;
      }
      // The node said how the attempt ended before it left: that report is folded (ReportFolder), not lost.
      const report = await store.getReport(nodeId, jobId).catch(() => undefined);
      if (report?.value.attempt === assignment.value.attempt && report.value.state === 'Ended') break;
      const next = endAttempt(
        job.value,
        {
          state: job.value.cancelRequested ? 'Cancelled' : 'Failed',
          failure: 'node-lost',
          reason: `node ${nodeId} left while the job was ${job.value.state}`,
          now: Date.now(),
        },
        policy,
      );
      const result = await store.endAssignment(assignment, job, next, [...guard(), nodeGone]);
      if (result.succeeded) {
        requeued++;
        logger.warn({ job: jobId, node: nodeId, attempt: job.value.attempt, next: next.state }, 'attempt lost with its node');
        break;
      }
    }
  }
  return requeued;
}
