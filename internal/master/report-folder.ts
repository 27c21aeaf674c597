import type { ICompare } from 'etcd3';
import type { Logger } from 'pino';
import { foldReport, type Job, type RetryPolicy, type RunReport } from '../../pkg/model/index.js';
import { CorruptRecordError, records, startInformer, type Informer, type Store, type Versioned } from '../../pkg/store/index.js';

/** Folds in flight at once. */
const CONCURRENCY = 8;
/** Tries of one report whose job, assignment or report kept changing under the fold; the next event tries again. */
const MAX_TRIES = 5;

/**
 * The master's half of what nodes report (`reports/<node>/<job>`): nodes
 * never write job records, so the leader reads each report, decides what it
 * means for the job (foldReport: Running, or the attempt's end under the
 * retry policy) and writes the job; once the attempt is over, the assignment
 * and the report go in the same transaction. Every fold compares the job,
 * the assignment and the report as read and the leader's term, so a report
 * is folded once, and only into the attempt it is about.
 */
export class ReportFolder {
  private informer: Informer | undefined;
  /** The reports etcd holds, by key (the informer's cache): what a new leader folds first. */
  private readonly known = new Map<string, Versioned<RunReport>>();
  /** Reports waiting for a fold, newest version per key. */
  private readonly queued = new Map<string, Versioned<RunReport>>();
  private inFlight = 0;
  private readonly idleWaiters: (() => void)[] = [];

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
          this.known.clear();
          for (const item of items) this.known.set(item.key, item);
          this.foldAll();
        },
        events: (events) => {
          for (const e of events) {
            if (e.type === 'delete' || !e.value) {
              this.known.delete(e.key);
              continue;
            }
            const report = { key: e.key, value: e.value, modRevision: e.modRevision, createRevision: e.createRevision };
            this.known.set(e.key, report);
            this.enqueue(report);
          }
        },
        error: (err) => this.logger.warn({ err: err.message, watch: 'reports' }, 'watch failed; re-listing'),
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
  foldAll(): void {
    for (const report of this.known.values()) this.enqueue(report);
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
    while (this.inFlight < CONCURRENCY && this.queued.size > 0) {
      const [key, report] = this.queued.entries().next().value as [string, Versioned<RunReport>];
      this.queued.delete(key);
      this.inFlight++;
      void this.fold(report)
        .catch((err: unknown) => this.logger.warn({ err, key }, 'could not fold a node report; it is tried again on its next change or leadership'))
        .finally(() => {
          this.inFlight--;
          this.pump();
          if (this.inFlight === 0 && this.queued.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
        });
    }
  }

  private async fold(first: Versioned<RunReport>): Promise<void> {
    const { nodeId, jobId } = this.store.keys.parseReport(first.key);
    let report: Versioned<RunReport> | undefined = first;
    for (let tries = 0; report && tries < MAX_TRIES && this.isActive(); tries++) {
      const [job, assignment] = await Promise.all([this.readJob(jobId), this.store.getAssignment(nodeId, jobId)]);
      const current = assignment && assignment.value.attempt === report.value.attempt ? assignment : undefined;
      if (!current || !job) {
        // About an attempt the node no longer holds (or a job that is gone): the report goes, nothing else.
        if (await this.store.foldReport({ report, release: true }, this.guard())) return;
      } else {
        const next = foldReport(job.value, report.value, nodeId, this.policy);
        const release = report.value.state === 'Ended';
        if (await this.store.foldReport({ report, job, next, assignment: current, release }, this.guard())) {
          if (next && release) this.logger.info({ job: jobId, node: nodeId, attempt: report.value.attempt, state: next.state, reason: next.reason }, 'attempt ended');
          return;
        }
      }
      // Something changed since the read (the report itself, a cancel, a new term): look again.
      report = await this.store.getReport(nodeId, jobId).catch(() => undefined);
    }
  }

  /** A job record that cannot be read is the jobs informer's to quarantine; here it counts as gone. */
  private async readJob(jobId: string): Promise<Versioned<Job> | undefined> {
    try {
      return await this.store.getJob(jobId);
    } catch (err) {
      if (err instanceof CorruptRecordError) return undefined;
      throw err;
    }
  }
}
