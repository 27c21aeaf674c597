import type { Versioned, WatchEvent } from '../../pkg/store/index.js';
import { compareJobsInQueue } from '../scheduler/index.js';
import { isPendingJob, type JobEntry, type PendingJob } from './pending-job.js';

/**
 * The master's queue of pending jobs: by id, and in queue order kept from
 * pass to pass. Local writes (placements, reason updates) are applied at
 * once and the watch events for them recognised later.
 */
export class PendingQueue {
  /** Pending jobs by id. Read-only outside this class: the queue order below follows every change. */
  readonly pending = new Map<string, PendingJob>();
  /** The pending jobs in queue order, kept from pass to pass; entries no longer in `pending` are dropped lazily. */
  private order: PendingJob[] | undefined;
  /** Jobs put into `pending` since `order` was built: merged in by the next inOrder(). */
  private added: PendingJob[] = [];

  /**
   * onNewPending sees every job that enters the queue (the policy learns the
   * job mix from it). A `held` job (one waiting for other jobs) is pending but
   * left out of the order until `release`d: a pass never walks through the
   * jobs that wait, however many there are.
   */
  constructor(
    private readonly onNewPending: (job: PendingJob) => void,
    private readonly held: (job: PendingJob) => boolean = () => false,
  ) {}

  /** The jobs informer's list (jobsInformerOptions: pending jobs, and parents of pending jobs, which are not queued); whether any job is pending. */
  reset(items: Versioned<JobEntry>[]): boolean {
    const known = new Set(this.pending.keys());
    this.pending.clear();
    this.order = undefined;
    this.added = [];
    for (const item of items) {
      const job = item.value;
      if (!isPendingJob(job)) continue;
      job.modRevision = Number(item.modRevision);
      this.pending.set(job.id, job);
      if (!known.has(job.id)) this.onNewPending(job);
    }
    return this.pending.size > 0;
  }

  /** Applies watch events; whether a job new to the queue arrived. */
  apply(events: WatchEvent<JobEntry>[]): boolean {
    let newPending = false;
    for (const e of events) {
      const id = e.key.slice(e.key.lastIndexOf('/') + 1);
      const revision = Number(e.modRevision);
      const current = this.pending.get(id);
      // Older than what we hold: the watch bringing a write that noteLocalJobWrite already applied.
      if (current && revision < current.modRevision) continue;
      const job = e.type === 'put' && isPendingJob(e.value) ? e.value : undefined;
      if (job) {
        job.modRevision = revision;
        if (!current) {
          newPending = true;
          this.onNewPending(job);
        }
        this.put(job);
      } else if (current) {
        this.pending.delete(id);
      }
    }
    return newPending;
  }

  /**
   * Records our own committed write of a pending job (placed: `next`
   * undefined; a new reason: the job as now stored) at `revision`, ahead of
   * its watch event. The write compared the revision we held, so no event of
   * the job can lie between that one and ours: if the queue no longer holds
   * that revision, the watch already delivered our write (or a later one)
   * and there is nothing to do.
   */
  noteLocalWrite(jobId: string, heldRevision: number, revision: number, next?: PendingJob): void {
    const current = this.pending.get(jobId);
    if (!current || current.modRevision !== heldRevision) return;
    if (next) {
      next.modRevision = revision;
      this.put(next);
    } else {
      this.pending.delete(jobId);
    }
  }

  /**
   * A held job may be placed now: it joins the order. As a copy, so that
   * an entry of it already there (released before, then held again) is no
   * longer current and is skipped: no job is offered twice in a pass.
   */
  release(jobId: string): void {
    const job = this.pending.get(jobId);
    if (!job) return;
    const copy = { ...job };
    this.pending.set(jobId, copy);
    this.addToOrder(copy);
  }

  private put(job: PendingJob): void {
    this.pending.set(job.id, job);
    if (!this.held(job)) this.addToOrder(job);
  }

  private addToOrder(job: PendingJob): void {
    if (!this.order) return;
    this.added.push(job);
    // Past this, sorting everything again is cheaper than merging.
    if (this.added.length > 1024 + this.pending.size / 4) {
      this.order = undefined;
      this.added = [];
    }
  }

  /**
   * The pending jobs in queue order (compareJobsInQueue: highest priority
   * first, then first submitted). The order is kept from pass to pass: jobs
   * that arrived since are merged in, so a long queue is not sorted again for
   * every pass. The list may still hold jobs that left the queue or were
   * replaced since: a job is current only while `pending.get(job.id) === job`.
   * Held jobs are not in it (a released one that is held again may be: the
   * pass checks every job's dependencies).
   */
  inOrder(): readonly PendingJob[] {
    if (!this.order) {
      this.order = [...this.pending.values()].filter((job) => !this.held(job)).sort(compareJobsInQueue);
      this.added = [];
    } else if (this.added.length > 0 || this.order.length > 2 * this.pending.size + 1024) {
      const current = (job: PendingJob): boolean => this.pending.get(job.id) === job;
      const added = this.added.filter(current).sort(compareJobsInQueue);
      const old = this.order;
      const merged: PendingJob[] = [];
      for (let i = 0, k = 0; i < old.length || k < added.length; ) {
        if (k < added.length && (i >= old.length || compareJobsInQueue(added[k], old[i]) < 0)) {
          merged.push(added[k++]);
        } else {
          const job = old[i++];
          if (current(job)) merged.push(job);
        }
      }
      this.order = merged;
      this.added = [];
    }
    return this.order;
  }
}
