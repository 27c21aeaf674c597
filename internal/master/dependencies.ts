import type { ICompare } from 'etcd3';
import type { Logger } from 'pino';
import { cancelled, type Job } from '../../pkg/model/index.js';
import { MAX_TXN_OPS, type Store, type Versioned } from '../../pkg/store/index.js';
import type { ClusterState, StateChange } from './cluster-state.js';
import { storedJob } from './pending-job.js';

/** A doomed job's write: its stored version, and the Cancelled record to put over it. */
interface Cancellation {
  job: Versioned<Job>;
  next: Job;
}

/** Parents read per round: a few transactions of MAX_TXN_OPS gets. */
const READ_ROUND = 8 * MAX_TXN_OPS;
/** A failed read of parents is tried again after this. */
const READ_RETRY_MS = 1000;
/** Cancellations per transaction (a compare and a put each, and the leadership guard). */
const CANCELS_PER_TXN = 64;

/**
 * The master's I/O for job dependencies around its DependencyIndex
 * (ClusterState.dependencies): it reads the jobs that new dependents wait
 * for and that no watch event has shown yet (at start-up all of them, later
 * those named for the first time: a parent that ended before its dependent
 * was submitted; an array's tasks), and, on the leader, cancels the dependents whose
 * conditions can never hold, through the state table (`cancelled`) and
 * fenced by the leadership term.
 */
export class Dependencies {
  private reads: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly guard: () => ICompare[],
    private readonly isLeader: () => boolean,
    private readonly onChange: (change: StateChange) => void,
    private readonly logger: Logger,
  ) {}

  /** Reads the parents not seen yet, one round after another, unless a read runs already. */
  readParents(): void {
    if (this.reads || this.stopped || !this.state.dependencies.hasUnread()) return;
    this.reads = this.readRounds().finally(() => {
      this.reads = undefined;
    });
  }

  private async readRounds(): Promise<void> {
    const index = this.state.dependencies;
    while (!this.stopped) {
      const ids = index.takeUnread(READ_ROUND);
      if (ids.length === 0) return;
      try {
        const results = await this.store.getJobStates(ids);
        if (this.stopped) return;
        this.onChange(this.state.observeParents(results.filter((r) => r.state !== undefined)));
        // No such job: an array (its id has no record; its tasks tell), or a job that is gone.
        for (const missing of results.filter((r) => r.state === undefined)) {
          const array = await this.store.getArrayTaskStates(missing.id);
          if (this.stopped) return;
          this.onChange(array ? this.state.observeArray(missing.id, array) : this.state.observeParents([missing]));
        }
      } catch (err) {
        index.unreadAgain(ids);
        this.logger.warn({ err, jobs: ids.length }, 'could not read the jobs pending jobs wait for; trying again');
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.readParents(), READ_RETRY_MS);
        return;
      }
    }
  }

  /**
   * Cancels the dependents found `doomed` (a condition can never hold), with
   * reason DependencyNeverSatisfied, in transactions that each compare the
   * versions the master holds and its term. One whose write loses a race
   * (its job changed) stays doomed and is tried again by a later pass:
   * false when some were not cancelled.
   */
  async cancelDoomed(busy: ReadonlySet<string>, now = Date.now()): Promise<boolean> {
    const index = this.state.dependencies;
    const ids = [...index.doomed].filter((id) => !busy.has(id) && this.state.pending.has(id));
    let done = 0;
    let tried = 0;
    for (let i = 0; i < ids.length && !this.stopped; i += CANCELS_PER_TXN) {
      // Built per transaction: the decoded jobs of one batch die with it, however many are doomed.
      const batch = this.cancellations(ids.slice(i, i + CANCELS_PER_TXN), now);
      tried += batch.length;
      if (await this.write(batch)) {
        done += batch.length;
        continue;
      }
      // A batch that lost a race goes again job by job, so one changed job does not hold back the others.
      if (batch.length === 1 || !this.isLeader()) continue;
      for (const one of batch) if (await this.write([one])) done++;
    }
    if (done > 0) this.logger.info({ cancelled: done }, 'cancelled jobs waiting for dependencies that can never be met');
    return done === tried;
  }

  /** The Cancelled records of doomed jobs still queued, each over the version the master holds. */
  private cancellations(ids: readonly string[], now: number): Cancellation[] {
    const out: Cancellation[] = [];
    for (const id of ids) {
      const job = this.state.pending.get(id);
      const verdict = this.state.dependencies.verdictOf(id);
      if (!job || verdict?.kind !== 'never') continue;
      const current = storedJob(job);
      out.push({ job: { key: this.store.keys.job(id), value: current, modRevision: String(job.modRevision), createRevision: '' }, next: cancelled(current, now, verdict.reason) });
    }
    return out;
  }

  private async write(batch: readonly Cancellation[]): Promise<boolean> {
    if (batch.length === 0) return true;
    try {
      const result = await this.store.updateJobsIfUnchanged(batch, this.guard());
      if (!result.succeeded) return false;
      for (const c of batch) this.state.noteLocalJobWrite(c.next.id, Number(c.job.modRevision), Number(result.revision));
      return true;
    } catch (err) {
      this.logger.warn({ err, jobs: batch.length }, 'could not cancel jobs whose dependencies can never be met; trying again later');
      return false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.reads;
  }
}
