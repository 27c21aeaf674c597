import type { ICompare } from 'etcd3';
import type { Logger } from 'pino';
import type { Placement, Store } from '../../pkg/store/index.js';
import type { ClusterState } from './cluster-state.js';
import type { ReasonUpdate } from './plan.js';

export interface CommitListener {
  /** Some placements lost a race (job or node changed, or the term ended). */
  onConflict(): void;
}

/**
 * Writes placements to etcd as a pipeline: the scheduler enqueues a pass's
 * placements and goes on planning; batches of one transaction each are kept
 * in flight up to a bound. A batch fails whole if any job or node in it
 * changed; its placements are then retried one by one so only the stale ones
 * are dropped (and their tentative allocations undone). Nothing is ever
 * placed twice: every placement compares the job's revision.
 */
export class Committer {
  /** Jobs whose placement is queued or in flight: the next pass must not plan them again. */
  readonly busyJobs = new Set<string>();
  private readonly queue: Placement[] = [];
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private reasonWrites = new Set<Promise<void>>();

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly logger: Logger,
    private readonly batchSize: number,
    private readonly concurrency: number,
    private readonly guard: () => ICompare[],
    private readonly listener: CommitListener,
  ) {}

  enqueue(placements: readonly Placement[]): void {
    for (const p of placements) {
      this.busyJobs.add(p.job.value.id);
      this.queue.push(p);
    }
    this.pump();
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0 && this.reasonWrites.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.batchSize);
      this.inFlight++;
      void this.commitBatch(batch).finally(() => {
        this.inFlight--;
        for (const p of batch) this.busyJobs.delete(p.job.value.id);
        this.pump();
        this.notifyIdle();
      });
    }
  }

  private notifyIdle(): void {
    if (this.queue.length > 0 || this.inFlight > 0 || this.reasonWrites.size > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private async commitBatch(batch: Placement[]): Promise<void> {
    if (await this.tryCommit(batch)) return;
    let conflicts = batch.length === 1 ? 1 : 0;
    if (batch.length > 1) {
      for (const p of batch) if (!(await this.tryCommit([p]))) conflicts++;
    }
    if (conflicts > 0) this.listener.onConflict();
  }

  private async tryCommit(batch: readonly Placement[]): Promise<boolean> {
    let succeeded = false;
    let revision = '';
    try {
      ({ succeeded, revision } = await this.store.commitPlacements(batch, this.guard()));
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, placements: batch.length }, 'placement commit failed; will retry');
    }
    if (succeeded) {
      for (const p of batch) {
        this.state.noteLocalJobWrite(p.job, p.scheduled, revision);
        this.logger.debug({ job: p.job.value.id, node: p.assignment.nodeId, attempt: p.assignment.attempt }, 'placed');
      }
    } else if (batch.length === 1) {
      this.state.dropAllocation(batch[0].job.value.id);
    }
    return succeeded;
  }

  /** Pending reasons are advisory: a write that loses a race is simply dropped. */
  writeReasons(updates: readonly ReasonUpdate[]): void {
    for (let i = 0; i < updates.length; i += this.batchSize) {
      const batch = updates.slice(i, i + this.batchSize);
      const write = this.store.updateJobsIfUnchanged(batch).then(
        (result) => {
          if (result.succeeded) for (const u of batch) this.state.noteLocalJobWrite(u.job, u.next, result.revision);
        },
        (err: unknown) => this.logger.debug({ err }, 'reason update failed'),
      );
      this.reasonWrites.add(write);
      void write.finally(() => {
        this.reasonWrites.delete(write);
        this.notifyIdle();
      });
    }
  }
}
