import type { ICompare } from 'etcd3';
import type { Logger } from 'pino';
import { endAttempt, type RetryPolicy } from '../../pkg/model/index.js';
import type { Store } from '../../pkg/store/index.js';
import type { ClusterState } from './cluster-state.js';
import { PeriodicTask } from './periodic.js';

/** The reason's first word when an attempt was taken back for never starting. */
export const START_DEADLINE_REASON = 'StartDeadline';

/**
 * Takes back attempts that a live node was given but never started (the job
 * is still Scheduled `deadlineMs` after its assignment): a worker that hangs
 * or lost its engine would otherwise hold the job, and its share of the node,
 * forever. The job goes back to Pending under the node-lost retry budget (the
 * node, not the job, failed), so a node that never starts anything cannot
 * bounce a job forever. Each take-back is one transaction that holds only if
 * we still lead, the assignment is the one read (create revision) and the job
 * is unchanged since read (mod revision): a worker claiming the job at the
 * same moment compares the same two revisions, so exactly one of them wins.
 */
export class StartDeadline {
  /** Attempts seen past Scheduled: an attempt never goes back, so each is read at most once after its deadline. */
  private readonly started = new Set<string>();
  private readonly task: PeriodicTask;

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly deadlineMs: number,
    private readonly isLeader: () => boolean,
    private readonly guard: () => ICompare[],
    private readonly policy: RetryPolicy,
    private readonly logger: Logger,
  ) {
    // Checked a few times per deadline, never more than every second nor less than every 30 s.
    this.task = new PeriodicTask(Math.min(30_000, Math.max(1000, Math.floor(deadlineMs / 4))), () => this.tick());
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  private async tick(): Promise<void> {
    if (!this.isLeader()) return;
    try {
      await this.sweep();
    } catch (err) {
      this.logger.warn({ err }, 'start-deadline sweep failed; retrying at the next tick');
    }
  }

  /** Returns how many attempts went back to Pending. */
  async sweep(now = Date.now()): Promise<number> {
    const due = this.state.allocationsAssignedBefore(now - this.deadlineMs);
    const current = new Set(due.map((a) => `${a.jobId}/${a.attempt}`));
    for (const key of this.started) if (!current.has(key)) this.started.delete(key);
    let requeued = 0;
    for (const { jobId, nodeId, attempt } of due) {
      const id = `${jobId}/${attempt}`;
      // A node that left is node-loss.ts's to requeue.
      if (this.started.has(id) || !this.state.nodes.has(nodeId)) continue;
      const assignment = await this.store.getAssignment(nodeId, jobId);
      const job = assignment && (await this.store.getJob(jobId));
      if (!assignment || !job || job.value.attempt !== assignment.value.attempt) continue;
      if (job.value.state !== 'Scheduled') {
        this.started.add(id);
        continue;
      }
      const reason = `${START_DEADLINE_REASON}: node ${nodeId} did not start it within ${this.deadlineMs / 1000} s`;
      const next = endAttempt(job.value, { state: 'Failed', failure: 'node-lost', reason, now }, this.policy);
      const result = await this.store.endAssignment(assignment, job, next, this.guard());
      if (result.succeeded) {
        requeued++;
        this.logger.warn({ job: jobId, node: nodeId, attempt, next: next.state }, 'attempt never started on its node; taken back');
      }
    }
    return requeued;
  }
}
