import type { ICompare } from 'etcd3';
import type { Logger } from 'pino';
import { foldReport, type Assignment, type Job, type RetryPolicy, type RunReport } from '../../pkg/model/index.js';
import {
  FOLDS_PER_TXN,
  MAX_PLACEMENT_TXN_BYTES,
  records,
  type CorruptRecordError,
  startInformer,
  type Informer,
  type ReportFold,
  type Store,
  type Versioned,
  type WatchEvent,
  placedJob,
} from '../../pkg/store/index.js';
import { CoalescingWindow } from '../../pkg/concurrency/coalescing-window.js';
import { failCorruptJob } from './corrupt-jobs.js';

/** Fold transactions in flight at once. */
const CONCURRENCY = 4;
/**
 * Less than a full batch of reports waits until this long after the last
 * batch went: under a stream of short jobs their reports share transactions,
 * and a start and an end reported within it fold as one.
 */
export const FOLD_WINDOW_MS = 10;
/** Tries of one report whose job, assignment or report kept changing under the fold; the next event tries again. */
const MAX_TRIES = 5;
/**
 * Running attempts whose job this folder keeps as it wrote it, so the fold
 * of the attempt's end needs no read; at most this many, of jobs up to
 * MAX_REMEMBERED_JOB_BYTES encoded (at most 16 MiB in all).
 */
const MAX_REMEMBERED = 4096;
const MAX_REMEMBERED_JOB_BYTES = 4 * 1024;

interface Attempt {
  job?: Versioned<Job>;
  corruptJob?: CorruptRecordError;
  assignment?: Versioned<Assignment>;
}

/**
 * The master's half of what nodes report (`reports/<node>/<job>`): nodes
 * never write job records, so the leader reads each report, decides what it
 * means for the job (foldReport: Running, or the attempt's end under the
 * retry policy) and writes the job; once the attempt is over, the assignment
 * and the report go in the same transaction. Every fold compares the job,
 * the assignment and the report as read and the leader's term, so a report
 * is folded once, and only into the attempt it is about. Folds go in
 * batches of one read and one write transaction; a batch that loses a race
 * is folded again report by report.
 */
export class ReportFolder {
  private informer: Informer | undefined;
  /** Reports waiting for a fold, newest version per key. */
  private readonly queued = new Map<string, Versioned<RunReport>>();
  /** By report key: the job and assignment as this folder's last fold of a running attempt left them, or the assignment as placed (remember()). */
  private readonly written = new Map<string, { job?: Versioned<Job>; assignment: Versioned<Assignment> }>();
  /** Report keys whose node says the attempt runs (Running, not yet Ended): what tells Running from Scheduled in the metrics. */
  private readonly runningReports = new Set<string>();
  private inFlight = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly window = new CoalescingWindow(FOLD_WINDOW_MS);
  /**
   * Report keys in a batch under way: a newer version of one waits for it,
   * so its fold starts from what that batch wrote (remember()), not from a
   * read that races the write and loses.
   */
  private readonly folding = new Set<string>();
  /** Report keys back in the queue after their batch lost a race (rebatch): the next loss folds them one by one. */
  private readonly rebatched = new Set<string>();
  private windowTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly policy: RetryPolicy,
    private readonly isActive: () => boolean,
    private readonly guard: () => ICompare[],
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.informer = startInformer<RunReport>(
      this.store,
      this.store.keys.collection('reports'),
      {
        reset: (items) => {
          this.runningReports.clear();
          for (const item of items) {
            this.track(item.key, item.value);
            this.enqueue(item);
          }
        },
        events: (events) => {
          for (const e of events) {
            this.track(e.key, e.type === 'put' ? e.value : undefined);
            if (e.type === 'put' && e.value) this.enqueue({ key: e.key, value: e.value, modRevision: e.modRevision, createRevision: e.createRevision });
          }
        },
        error: (err) => this.logger.warn({ err, watch: 'reports' }, 'watch failed; re-listing'),
        corrupt: (err) => this.logger.warn({ key: err.key, why: err.why, watch: 'reports' }, 'quarantined a corrupt record: skipped'),
      },
      { decode: records.report.decode },
    );
    await this.informer.ready;
  }

  async stop(): Promise<void> {
    await this.informer?.stop();
    await this.idle();
  }

  /** Every report etcd holds, again: what a master that just became leader does first. */
  async foldAll(): Promise<void> {
    this.written.clear();
    const { items } = await this.store.list(this.store.keys.collection('reports'), records.report);
    items.forEach((item) => this.enqueue(item));
  }

  /**
   * Assignments as the master's informer sees them put. One not changed since
   * its placement carries the job exactly as that placement stored it, at the
   * same revision (one transaction wrote both): the first fold of its attempt
   * starts from it with no read. A stale one only fails its fold's compare.
   */
  noteAssignments(events: readonly WatchEvent<Assignment>[]): void {
    if (!this.isActive()) return;
    for (const e of events) {
      if (e.type === 'delete') {
        // The attempt is over (its end folded, or the job requeued): nothing kept of it is wanted again.
        const { nodeId, jobId } = this.store.keys.parseAssignment(e.key);
        this.written.delete(this.store.keys.report(nodeId, jobId));
        continue;
      }
      const a = e.value;
      if (!a) continue;
      const key = this.store.keys.report(a.nodeId, a.jobId);
      if (e.modRevision !== e.createRevision) {
        // Changed since its placement (a cancel or an eviction flagged): what was kept of it as placed is stale.
        if (this.written.get(key)?.job === undefined) this.written.delete(key);
        continue;
      }
      if (!a.job || a.job.length > MAX_REMEMBERED_JOB_BYTES) continue;
      if (this.written.has(key)) continue; // a fold got there first (its report came before this event): it knows more
      // A copy: the decoded bytes may be a view of the whole watch response.
      this.remember(key, undefined, { key: e.key, value: { ...a, job: Buffer.from(a.job) }, modRevision: e.modRevision, createRevision: e.createRevision });
    }
  }

  /** Whether the next fold of the job's attempt on the node starts from what this folder holds (no read). */
  holdsAttempt(nodeId: string, jobId: string): boolean {
    return this.written.has(this.store.keys.report(nodeId, jobId));
  }

  /** Whether the node reported the job's attempt there running (every master follows reports, leader or not). */
  isRunning(nodeId: string, jobId: string): boolean {
    return this.runningReports.has(this.store.keys.report(nodeId, jobId));
  }

  private track(key: string, report: RunReport | undefined): void {
    if (report?.state === 'Running') this.runningReports.add(key);
    else this.runningReports.delete(key);
  }

  /** Resolves when no fold is queued or in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0 && this.queued.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private enqueue(report: Versioned<RunReport>): void {
    if (!this.isActive()) return;
    this.queued.set(report.key, report);
    this.pump();
  }

  private pump(): void {
    if (this.windowTimer) return;
    while (this.inFlight < CONCURRENCY && this.queued.size > 0) {
      const wait = this.queued.size < FOLDS_PER_TXN ? this.window.delay() : 0;
      if (wait > 0) {
        this.windowTimer = setTimeout(() => {
          this.windowTimer = undefined;
          this.pump();
        }, wait);
        return;
      }
      const batch: Versioned<RunReport>[] = [];
      for (const [key, report] of this.queued) {
        if (batch.length >= FOLDS_PER_TXN) break;
        if (this.folding.has(key)) continue;
        batch.push(report);
        this.queued.delete(key);
        this.folding.add(key);
      }
      if (batch.length === 0) return;
      this.window.ran();
      this.inFlight++;
      void this.foldBatch(batch)
        .catch((err: unknown) => this.logger.warn({ err, reports: batch.length }, 'could not fold node reports; each is tried again on its next change or leadership'))
        .finally(() => {
          this.inFlight--;
          for (const report of batch) {
            this.folding.delete(report.key);
            if (!this.queued.has(report.key)) this.rebatched.delete(report.key);
          }
          this.pump();
          if (this.inFlight === 0 && this.queued.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
        });
    }
  }

  /** One read for what is not known, one write for all; a lost race folds each report on its own. */
  private async foldBatch(batch: readonly Versioned<RunReport>[]): Promise<void> {
    const attempts = await this.attemptsOf(batch);
    const planned: { fold: ReportFold; attempt: Attempt }[] = [];
    const alone: Versioned<RunReport>[] = [];
    let bytes = 0;
    batch.forEach((report, i) => {
      if (attempts[i].corruptJob) {
        alone.push(report); // failCorruptJob, on its own
        return;
      }
      // Each fold writes its job: a batch stays within what etcd takes in one request.
      const size = attempts[i].assignment?.value.job?.length ?? 0;
      if (planned.length > 0 && bytes + size > MAX_PLACEMENT_TXN_BYTES) {
        alone.push(report);
        return;
      }
      bytes += size;
      planned.push({ fold: this.planFold(report, attempts[i]), attempt: attempts[i] });
    });
    if (planned.length > 0) {
      const res = await this.store.foldReports(planned.map((p) => p.fold), this.guard());
      if (res.succeeded) for (const { fold, attempt } of planned) this.folded(fold, attempt, res.revision);
      else if (planned.length > 1 && !batch.some((report) => this.rebatched.has(report.key))) this.rebatch(planned.map((p) => p.fold.report));
      else alone.push(...planned.map((p) => p.fold.report));
    }
    // A report with a newer version waiting (a node that reported its end right after its start, say) is left
    // to that version: a lost race is mostly that.
    for (const report of alone) if (!this.queued.has(report.key)) await this.fold(report);
  }

  /**
   * A batch that lost a race (mostly to one node's end report landing on its
   * start's fold) goes back to the queue once, to be read again and folded
   * in the next batch with what came meanwhile, rather than report by report;
   * one that loses again goes report by report.
   */
  private rebatch(reports: readonly Versioned<RunReport>[]): void {
    for (const report of reports) {
      if (this.queued.has(report.key)) continue; // a newer version waits: that one is folded
      this.rebatched.add(report.key);
      this.queued.set(report.key, report);
    }
  }

  /** The job and assignment of each report's attempt: what this folder wrote or saw placed of it, or one read for all the others. */
  private async attemptsOf(batch: readonly Versioned<RunReport>[]): Promise<Attempt[]> {
    const out: (Attempt | undefined)[] = batch.map((report) => {
      const known = this.written.get(report.key);
      this.written.delete(report.key);
      const job = known && (known.job ?? this.placedJob(known.assignment));
      return job && job.value.attempt === report.value.attempt ? { job, assignment: known.assignment } : undefined;
    });
    const missing = batch.filter((_, i) => !out[i]).map((report) => this.store.keys.parseReport(report.key));
    if (missing.length > 0) {
      const read = await this.store.getJobsAndAssignments(missing);
      let next = 0;
      for (let i = 0; i < out.length; i++) out[i] ??= read[next++];
    }
    return out as Attempt[];
  }

  /** What one report means for its attempt: the fold to write. */
  private planFold(report: Versioned<RunReport>, { job, assignment }: Attempt): ReportFold {
    const current = assignment && assignment.value.attempt === report.value.attempt ? assignment : undefined;
    // About an attempt the node no longer holds (or a job that is gone): the report goes, nothing else.
    if (!current || !job) return { report, release: true };
    const { nodeId } = this.store.keys.parseReport(report.key);
    const next = foldReport(job.value, report.value, nodeId, this.policy);
    return { report, job, next, assignment: current, release: report.value.state === 'Ended' };
  }

  /** After a fold was written: a running attempt's job as written is what the fold of its end starts from. */
  private folded(fold: ReportFold, attempt: Attempt, revision: string): void {
    if (fold.release) {
      if (fold.next) this.logger.debug({ job: fold.next.id, report: fold.report.key, state: fold.next.state }, 'attempt ended');
      return;
    }
    if (!fold.job || !attempt.assignment) return;
    this.remember(fold.report.key, fold.next ? { ...fold.job, value: fold.next, modRevision: revision } : fold.job, attempt.assignment);
  }

  /** One report on its own, reading again after each lost race. */
  private async fold(first: Versioned<RunReport>): Promise<void> {
    const { nodeId, jobId } = this.store.keys.parseReport(first.key);
    let report: Versioned<RunReport> | undefined = first;
    for (let tries = 0; report && tries < MAX_TRIES && this.isActive(); tries++) {
      const [attempt] = await this.store.getJobsAndAssignments([{ nodeId, jobId }]);
      if (attempt.corruptJob) {
        // The jobs informer decodes only pending jobs: a placed job's corrupt record is found here. It ends
        // Failed (Corrupt) and its assignment goes, so the node stops the run.
        await failCorruptJob(this.store, attempt.corruptJob, attempt.assignment && nodeId, this.guard(), this.logger);
        continue; // the job is Failed now (or changed): fold the report against that
      }
      const fold = this.planFold(report, attempt);
      const res = await this.store.foldReport(fold, this.guard());
      if (res.succeeded) {
        this.folded(fold, attempt, res.revision);
        return;
      }
      // Something changed since the read (the report itself, a cancel, a new term): look again.
      report = await this.store.getReport(nodeId, jobId).catch(() => undefined);
    }
  }

  /** The job as its placement stored it (in its assignment, at the assignment's creation); undefined if unreadable (the read finds out why). */
  private placedJob(assignment: Versioned<Assignment>): Versioned<Job> | undefined {
    try {
      return { key: this.store.keys.job(assignment.value.jobId), value: placedJob(assignment), modRevision: assignment.createRevision, createRevision: '' };
    } catch {
      return undefined;
    }
  }

  /**
   * Keeps what a fold wrote of a running attempt, for the fold of its end, or
   * (no job) an assignment as placed, for the first fold; small jobs only, and
   * a bounded number.
   */
  private remember(key: string, job: Versioned<Job> | undefined, assignment: Versioned<Assignment>): void {
    if ((assignment.value.job?.length ?? Infinity) > MAX_REMEMBERED_JOB_BYTES) return;
    if (this.written.size >= MAX_REMEMBERED) this.written.delete(this.written.keys().next().value as string);
    this.written.set(key, { job, assignment });
  }
}
