import type { ICompare } from 'etcd3';
import type { Logger } from 'pino';
import type { Job } from '../../pkg/model/index.js';
import { encode, MAX_PLACEMENT_TXN_BYTES, type Placement, type Store, type TxnResult } from '../../pkg/store/index.js';
import type { ClusterState } from './cluster-state.js';
import { pendingJobOf, storedJob, type PendingJob } from './pending-job.js';
import { placementWrite, type PlannedPlacement, type ReasonUpdate } from './plan.js';

/** A reason write in flight: once it commits, the queue's next version of each job it wrote, by id; undefined if it did not. */
type ReasonWrite = Promise<ReadonlyMap<string, PendingJob> | undefined>;

export interface CommitListener {
  /** Some placements or pending reasons lost a race (a job or node changed, or the term ended): a pass should look again. */
  onConflict(): void;
  /** Placements just committed (the metrics count them). */
  onCommitted(batch: readonly PlannedPlacement[]): void;
}

/** End of the unit starting at i: one placement, or every consecutive placement of the same gang. */
function unitEnd(list: readonly PlannedPlacement[], i: number): number {
  const group = list[i].group;
  let end = i + 1;
  if (group !== undefined) while (end < list.length && list[end].group === group) end++;
  return end;
}

/**
 * Writes placements to etcd as a pipeline: the scheduler enqueues a pass's
 * placements and goes on planning; batches of one transaction each are kept
 * in flight up to a bound. A batch fails whole if any job or node in it
 * changed; its placements are then retried one by one so only the stale ones
 * are dropped (and their tentative allocations undone). Nothing is ever
 * placed twice: every placement compares the job's revision.
 *
 * Queued placements are small (the pending job and where it goes); the
 * Scheduled job and the assignment are built from the job's stored value
 * only for the batches in flight.
 */
export class Committer {
  /** Jobs whose placement is queued or in flight: the next pass must not plan them again. */
  readonly busyJobs = new Set<string>();
  private queue: PlannedPlacement[] = [];
  private queueHead = 0;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private reasonWrites = new Set<ReasonWrite>();
  /**
   * Jobs whose reason write is in flight. A pass that runs meanwhile still
   * sees the old reason and offers the new one again; a second write of it
   * would only lose to the first (the job's revision moved), and take its
   * whole batch down with it.
   */
  private readonly reasonJobs = new Map<string, ReasonWrite>();
  /**
   * Placements planned while their job's reason write was in flight: they
   * wait for it and start from the job it wrote, instead of losing to it
   * (the job's revision moved) and being retried one by one.
   */
  private readonly afterReason = new Map<string, ReasonWrite>();

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly logger: Logger,
    private readonly batchSize: number,
    private readonly concurrency: number,
    private readonly guard: () => ICompare[],
    private readonly listener: CommitListener,
  ) {}

  enqueue(placements: readonly PlannedPlacement[]): void {
    for (const p of placements) {
      this.busyJobs.add(p.job.id);
      this.queue.push(p);
      const reasonWrite = this.reasonJobs.get(p.job.id);
      if (reasonWrite) this.afterReason.set(p.job.id, reasonWrite);
    }
    this.pump();
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.queued() === 0 && this.inFlight === 0 && this.reasonWrites.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private queued(): number {
    return this.queue.length - this.queueHead;
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queued() > 0) {
      const planned = this.nextBatch();
      if (this.queueHead === this.queue.length) {
        this.queue = [];
        this.queueHead = 0;
      }
      this.inFlight++;
      void this.commitBatch(planned).finally(() => {
        this.inFlight--;
        for (const p of planned) this.busyJobs.delete(p.job.id);
        this.pump();
        this.notifyIdle();
      });
    }
  }

  /**
   * Up to batchSize placements and MAX_PLACEMENT_TXN_BYTES of job records
   * (each placement writes its job twice: the key and the assignment's copy);
   * a gang's placements (enqueued together) are never split across batches.
   */
  private nextBatch(): PlannedPlacement[] {
    const batch: PlannedPlacement[] = [];
    let bytes = 0;
    while (this.queueHead < this.queue.length) {
      const end = unitEnd(this.queue, this.queueHead);
      let unitBytes = 0;
      for (let i = this.queueHead; i < end; i++) unitBytes += 2 * this.queue[i].job.stored.length;
      if (batch.length > 0 && (batch.length + (end - this.queueHead) > this.batchSize || bytes + unitBytes > MAX_PLACEMENT_TXN_BYTES)) break;
      for (let i = this.queueHead; i < end; i++) batch.push(this.queue[i]);
      bytes += unitBytes;
      this.queueHead = end;
    }
    return batch;
  }

  private notifyIdle(): void {
    if (this.queued() > 0 || this.inFlight > 0 || this.reasonWrites.size > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** A failed batch is retried unit by unit (a placement, or a whole gang), so one conflict does not sink the others. */
  private async commitBatch(planned: PlannedPlacement[]): Promise<void> {
    const batch = await this.afterReasonWrites(planned);
    if (await this.tryCommit(batch)) return;
    const units: PlannedPlacement[][] = [];
    for (let i = 0; i < batch.length; ) {
      const end = unitEnd(batch, i);
      units.push(batch.slice(i, end));
      i = end;
    }
    let conflicts = units.length === 1 ? 1 : 0;
    if (units.length > 1) {
      for (const unit of units) if (!(await this.tryCommit(unit))) conflicts++;
    }
    if (conflicts > 0) this.listener.onConflict();
  }

  private async tryCommit(batch: readonly PlannedPlacement[]): Promise<boolean> {
    let succeeded = false;
    let revision = '';
    try {
      ({ succeeded, revision } = await this.send(batch));
    } catch (err) {
      this.logger.warn({ err, placements: batch.length }, 'placement commit failed; will retry');
    }
    if (succeeded) {
      const committed = Number(revision);
      for (const p of batch) {
        this.state.noteLocalJobWrite(p.job.id, p.job.modRevision, committed);
        this.logger.debug({ job: p.job.id, node: p.nodeId, attempt: p.job.attempt + 1 }, 'placed');
      }
      this.listener.onCommitted(batch);
    } else if (unitEnd(batch, 0) === batch.length) {
      // One unit failed for good: its tentative allocations go.
      for (const p of batch) this.state.dropAllocation(p.job.id);
    }
    return succeeded;
  }

  /** The batch with each placement planned during its job's reason write based on the job that write left (if it committed). */
  private async afterReasonWrites(batch: PlannedPlacement[]): Promise<PlannedPlacement[]> {
    const writes = batch.map((p) => this.afterReason.get(p.job.id));
    if (writes.every((w) => w === undefined)) return batch;
    for (const p of batch) this.afterReason.delete(p.job.id);
    const written = await Promise.all(writes);
    return batch.map((p, i) => {
      const next = written[i]?.get(p.job.id);
      return next && next.modRevision > p.job.modRevision ? { ...p, job: next } : p;
    });
  }

  /**
   * Decodes the stored jobs, builds the Scheduled values and assignments and
   * sends the transaction. Not async on purpose: the decoded jobs die with
   * this call, while the transaction is in flight (a retry builds them
   * again). Kept until the reply, they would outlive a few young-generation
   * collections and fill the old generation with garbage.
   */
  private send(batch: readonly PlannedPlacement[]): Promise<TxnResult> {
    const writes: Placement[] = batch.map((p) => placementWrite(p, this.store.keys.job(p.job.id)));
    return this.store.commitPlacements(writes, this.guard());
  }

  /**
   * Pending reasons are advisory: a batch that loses a race (one of its jobs
   * changed, often by this master's previous reason write still in flight)
   * is dropped, and the listener asked for another pass, which offers the
   * reasons again; without it a quiet cluster kept those jobs without one.
   */
  writeReasons(offered: readonly ReasonUpdate[]): void {
    const updates = offered.filter((u) => !this.reasonJobs.has(u.job.id));
    for (let i = 0; i < updates.length; i += this.batchSize) {
      const batch = updates.slice(i, i + this.batchSize);
      // What the queue holds once the write commits; the decoded jobs die with sendReasons (see send).
      const after = batch.map((u) => ({ id: u.job.id, held: u.job.modRevision, next: undefined as PendingJob | undefined }));
      const write: ReasonWrite = this.sendReasons(batch, after).then(
        (result) => {
          if (!result.succeeded) {
            this.listener.onConflict();
            return undefined;
          }
          const revision = Number(result.revision);
          const written = new Map<string, PendingJob>();
          for (const a of after) {
            if (a.next) {
              a.next.modRevision = revision;
              written.set(a.id, a.next);
            }
            this.state.noteLocalJobWrite(a.id, a.held, revision, a.next);
          }
          return written;
        },
        (err: unknown) => {
          this.logger.debug({ err }, 'reason update failed');
          return undefined;
        },
      );
      for (const u of batch) this.reasonJobs.set(u.job.id, write);
      this.reasonWrites.add(write);
      void write.finally(() => {
        this.reasonWrites.delete(write);
        for (const u of batch) this.reasonJobs.delete(u.job.id);
        this.notifyIdle();
      });
    }
  }

  private sendReasons(batch: readonly ReasonUpdate[], after: { next: PendingJob | undefined }[]): Promise<TxnResult> {
    const now = Date.now();
    const updates = batch.map((u, i) => {
      const current = storedJob(u.job);
      const next: Job = { ...current, reason: u.reason, reasonAt: now };
      const encoded = encode(next);
      after[i].next = pendingJobOf(next, encoded, 0) ?? undefined;
      return { job: { key: this.store.keys.job(u.job.id), value: current, modRevision: String(u.job.modRevision), createRevision: '' }, next, encoded };
    });
    return this.store.updateJobsIfUnchanged(updates);
  }
}
