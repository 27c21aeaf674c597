import type { Logger } from '../../pkg/log/logger.js';
import { isFinal, type Assignment, type ExecutorKind, type Job } from '../../pkg/model/index.js';
import type { OwnedUpdate, Store, Versioned } from '../../pkg/store/index.js';
import type { WorkerConfig } from './config.js';
import { errorMessage, type Execution, type ExecutionResult, type Executor } from './executor.js';
import { LogSink } from './log-sink.js';
import { applyOutcome, CANCELLED_REASON, finalOutcome, WORKER_STOPPED_REASON, type Outcome } from './outcome.js';

/** Waits between tries of a final-state write: about a minute in all. */
const FINAL_WRITE_DELAYS_MS = [250, 500, 1000, 2000, 4000, 8000, 15_000, 30_000];

/** Grace for a run whose assignment was taken from this worker: it is no longer ours to finish. */
export const TAKEN_GRACE_MS = 2000;

export type StopCause = 'cancel' | 'taken' | 'worker';

export interface JobRunDeps {
  store: Store;
  executors: ReadonlyMap<ExecutorKind, Executor>;
  config: Pick<WorkerConfig, 'nodeId' | 'maxLogBytes' | 'logChunkBytes' | 'logFlushMs'>;
  logger: Logger;
}

/**
 * One attempt of one job on this node, from its assignment to its final
 * state: claim it (Scheduled → Running), run it, store its output, record how
 * it ended. Every write is fenced by the assignment, so a run that was taken
 * away can never overwrite a newer attempt.
 */
export class JobRun {
  readonly jobId: string;
  readonly attempt: number;
  readonly assignment: Versioned<Assignment>;
  /** Settles when the run is over (never rejects). */
  readonly done: Promise<void>;
  private readonly deps: JobRunDeps;
  private readonly logger: Logger;
  private readonly causes = { cancel: false, taken: false, worker: false };
  private stopGraceMs: number | undefined;
  private execution: Execution | undefined;
  private releasingFlag = false;
  private detached = false;
  private claimFailed = false;

  constructor(deps: JobRunDeps, assignment: Versioned<Assignment>) {
    this.deps = deps;
    this.assignment = assignment;
    this.jobId = assignment.value.jobId;
    this.attempt = assignment.value.attempt;
    this.logger = deps.logger.child({ job: this.jobId, attempt: this.attempt });
    this.done = this.run().catch((err: unknown) => {
      this.logger.error({ err }, 'job run failed unexpectedly');
    });
  }

  /** The assignment's own creation: a new assignment for the same job is a new attempt. */
  get createRevision(): string {
    return this.assignment.createRevision;
  }

  /**
   * True once this run wrote (or is writing) a final state, which deletes the
   * assignment: its disappearance is then our doing, not a take-away.
   */
  get releasing(): boolean {
    return this.releasingFlag;
  }

  /** The claim (Scheduled → Running) could not be written; nothing ran, so it may be tried again. */
  get retryable(): boolean {
    return this.claimFailed;
  }

  /** Stops the run; what is recorded depends on the cause (a taken run records nothing). */
  requestStop(cause: StopCause, graceMs: number): void {
    if (this.causes[cause]) return;
    this.causes[cause] = true;
    this.stopGraceMs = Math.min(graceMs, this.stopGraceMs ?? graceMs);
    this.logger.info({ cause, graceMs }, 'stopping job');
    if (this.execution) this.stopExecution(this.execution);
  }

  /** Leaves the run going but stops following it (the worker leaves, the job stays). */
  detach(): void {
    this.detached = true;
    this.execution?.detach();
  }

  private get stopRequested(): boolean {
    return this.causes.cancel || this.causes.taken || this.causes.worker;
  }

  private stopExecution(execution: Execution): void {
    execution.stop(this.stopGraceMs ?? TAKEN_GRACE_MS).catch((err: unknown) => {
      this.logger.warn({ err }, 'could not stop the job');
    });
  }

  private claim(mutate: (job: Job) => Job | undefined): Promise<OwnedUpdate> {
    return this.deps.store.updateOwnedJob(this.assignment, mutate);
  }

  /**
   * A final write must not be lost to a short etcd outage (the job would stay
   * Running): retry it for a while. Fencing still applies to every try.
   */
  private async writeFinal(mutate: (job: Job) => Job | undefined): Promise<OwnedUpdate | undefined> {
    // A worker that is shutting down should not hang on an unreachable etcd.
    const delays = this.causes.worker ? FINAL_WRITE_DELAYS_MS.slice(0, 3) : FINAL_WRITE_DELAYS_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.deps.store.updateOwnedJob(this.assignment, mutate);
      } catch (err) {
        if (attempt >= delays.length || this.detached) {
          this.logger.error({ err }, 'could not record the final state');
          return undefined;
        }
        this.logger.warn({ err }, 'recording the final state failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, delays[attempt]));
      }
    }
  }

  private async run(): Promise<void> {
    const { config } = this.deps;
    let claimed: Job | undefined;
    let seen: Job | undefined;
    let result: OwnedUpdate;
    try {
      result = await this.claim((current) => {
        seen = current;
        claimed = undefined;
        this.releasingFlag = false;
        if (current.state !== 'Scheduled') return undefined;
        const now = Date.now();
        if (current.cancelRequested || this.causes.cancel) {
          // Cancelled before it started: nothing to run.
          this.releasingFlag = true;
          return applyOutcome(current, { state: 'Cancelled', reason: CANCELLED_REASON }, now);
        }
        const running: Job = { ...current, state: 'Running', startedAt: now, node: config.nodeId };
        delete running.reason;
        claimed = running;
        return running;
      });
    } catch (err) {
      // Nothing started: the worker may try this assignment again later.
      this.claimFailed = true;
      this.logger.warn({ err }, 'could not claim the job; will try again');
      return;
    }
    if (result === 'fenced') {
      this.logger.info('assignment is no longer this node\'s; not starting');
      return;
    }
    if (result === 'unchanged') {
      if (seen) await this.handleUnclaimable(seen);
      return;
    }
    if (!claimed) {
      this.logger.info('cancelled before it started');
      return;
    }
    await this.execute(claimed);
  }

  private async execute(job: Job): Promise<void> {
    const { store, config, executors } = this.deps;
    const sink = new LogSink({
      write: (chunk) => store.appendLogChunk(this.assignment, chunk),
      maxBytes: config.maxLogBytes,
      chunkBytes: config.logChunkBytes,
      flushMs: config.logFlushMs,
      onFenced: () => {
        this.logger.warn('log write fenced: the assignment was taken from this node');
        this.requestStop('taken', TAKEN_GRACE_MS);
      },
      onError: (err, seq) => this.logger.warn({ err, seq }, 'dropped a log chunk after retries'),
    });
    const executor = executors.get(job.kind);
    if (!executor) {
      await this.failToStart(job, sink, `this node cannot run ${job.kind} jobs (no Docker engine here)`);
      return;
    }
    if (this.stopRequested) {
      await this.finish(job, sink, { startError: this.causes.worker ? WORKER_STOPPED_REASON : 'stopped before it started' });
      return;
    }
    let execution: Execution;
    try {
      execution = await executor.start(job, this.assignment.value, (stream, data) => sink.push(stream, data));
    } catch (err) {
      await this.failToStart(job, sink, errorMessage(err));
      return;
    }
    if (this.detached) {
      execution.detach();
      return;
    }
    this.execution = execution;
    this.logger.info({ executor: executor.kind }, 'job started');
    if (this.stopRequested) this.stopExecution(execution);
    const exit = await execution.exited;
    if (this.detached) return;
    await this.finish(job, sink, exit);
  }

  private async failToStart(job: Job, sink: LogSink, reason: string): Promise<void> {
    this.logger.warn({ reason }, 'job could not start');
    // The reason also goes to the log, where `titan logs` readers look first.
    sink.push('stderr', `[titan] ${reason}\n`);
    await this.finish(job, sink, { startError: reason });
  }

  /** Stores the rest of the output, then the final state: logs are complete before the job is final. */
  private async finish(job: Job, sink: LogSink, run: ExecutionResult | { startError: string }): Promise<void> {
    await sink.close();
    if (this.causes.taken || sink.fenced) {
      this.logger.info('run ended after the assignment was taken away; recording nothing');
      return;
    }
    let outcome: Outcome | undefined;
    this.releasingFlag = true;
    const result = await this.writeFinal((current) => {
      // Already final (someone else ended it): rewrite as is, which still releases the assignment.
      if (isFinal(current.state)) return current;
      outcome = finalOutcome(current, this.causes, run);
      return applyOutcome(current, outcome, Date.now());
    });
    if (result === 'fenced') this.logger.info('final state fenced: the assignment was taken from this node');
    else if (result !== undefined) this.logger.info({ ...outcome, job: job.id }, 'job finished');
  }

  /** The job is not Scheduled although this node holds its assignment. */
  private async handleUnclaimable(job: Job): Promise<void> {
    if (isFinal(job.state)) {
      // A leftover assignment of an ended job: release it so its resources free up.
      this.releasingFlag = true;
      await this.writeFinal((current) => (isFinal(current.state) ? current : undefined));
      return;
    }
    if (job.state === 'Running') {
      await this.recoverOrphan(job);
      return;
    }
    this.logger.warn({ state: job.state }, 'assignment for a job that is not Scheduled; ignoring it');
  }

  /**
   * The job runs here according to etcd, but not in this process: an earlier
   * worker process started it. Re-attaching belongs here; until then the run
   * is cleaned up and recorded as failed, so the job never hangs in Running.
   */
  private async recoverOrphan(job: Job): Promise<void> {
    this.logger.warn('job was started by an earlier worker process; cleaning it up');
    try {
      await this.deps.executors.get(job.kind)?.abandon(job, this.assignment.value);
    } catch (err) {
      this.logger.warn({ err }, 'could not clean up the earlier run');
    }
    this.releasingFlag = true;
    await this.writeFinal((current) => {
      if (current.state !== 'Running') return isFinal(current.state) ? current : undefined;
      return applyOutcome(current, { state: 'Failed', reason: 'the worker restarted while the job ran; the run was lost' }, Date.now());
    });
  }
}
