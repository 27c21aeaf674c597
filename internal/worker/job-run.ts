import type { Logger } from '../../pkg/log/logger.js';
import { corruptJobRecord, isFinal, type Assignment, type ExecutorKind, type Job, type RetryPolicy } from '../../pkg/model/index.js';
import { CorruptRecordError, placedJob, txnCompare, type JobVersion, type OwnedUpdate, type Store, type Versioned } from '../../pkg/store/index.js';
import type { WorkerConfig } from './config.js';
import { errorMessage, sleep, type Execution, type Executor, type OutputHandler } from './executor.js';
import { attemptLogLimit, type LogLimit } from './log-budget.js';
import { LogSink, resumeAfter, type LogResume } from './log-sink.js';
import {
  CONTAINER_REMOVED_REASON,
  jobAfterAttempt,
  NO_CAUSES,
  NOT_STARTED_REASON,
  SHELL_NOT_REATTACHED_REASON,
  NOT_FOLLOWED_REASON,
  type RunEnd,
  type StopCauses,
} from './outcome.js';
import type { RunJournal, RunRecord } from './run-journal.js';

/** Waits between tries of a final-state write: about a minute in all, then a later run of the assignment takes over. */
const FINAL_WRITE_DELAYS_MS = [250, 500, 1000, ...Array.from({ length: 29 }, () => 2000)];
/** A worker that is shutting down should not hang on an unreachable etcd. */
const SHUTDOWN_WRITE_DELAYS_MS = [250, 500, 1000];

/** Grace for a run whose assignment was taken from this worker: it is no longer ours to finish. */
export const TAKEN_GRACE_MS = 2000;

export type StopCause = 'cancel' | 'taken' | 'worker';

export interface JobRunDeps {
  store: Store;
  executors: ReadonlyMap<ExecutorKind, Executor>;
  journal: RunJournal;
  policy: RetryPolicy;
  config: Pick<WorkerConfig, 'nodeId' | 'maxLogBytes' | 'jobLogBudgetBytes' | 'logChunkBytes' | 'logFlushMs' | 'stopGraceMs'>;
  logger: Logger;
}

/**
 * One attempt of one job on this node, from its assignment to its recorded
 * end: claim it (Scheduled → Running) and run it, or re-attach to the run an
 * earlier worker process started; store its output; record how it ended
 * through endAttempt. Every write is fenced by the assignment, so a run that
 * was taken away can never overwrite a newer attempt.
 */
export class JobRun {
  readonly jobId: string;
  readonly attempt: number;
  readonly assignment: Versioned<Assignment>;
  /** Settles when the run is over (never rejects). */
  readonly done: Promise<void>;
  private readonly deps: JobRunDeps;
  private readonly logger: Logger;
  private readonly causes: StopCauses & { taken: boolean } = { ...NO_CAUSES, taken: false };
  private stopGraceMs: number | undefined;
  private execution: Execution | undefined;
  /** This attempt's log cap, from the job's budget; set before the run's sink is made. */
  private logLimit: LogLimit | undefined;
  /** The start record this run journaled or found in the journal (see journalStart). */
  private journaled: RunRecord | undefined;
  /** The execution ended by itself or was stopped: nothing left to stop or time out. */
  private runEnded = false;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private releasingFlag = false;
  private detached = false;
  private claimFailed = false;
  private recordFailed = false;
  /** An earlier process's run being looked up again: what fence() must kill while there is no execution yet. */
  private recovering: { job: Job; record: RunRecord | undefined } | undefined;
  /** The job as this run last wrote it: the next write starts from it instead of reading the job first. */
  private written: JobVersion | undefined;

  constructor(deps: JobRunDeps, assignment: Versioned<Assignment>) {
    this.deps = deps;
    this.assignment = assignment;
    this.jobId = assignment.value.jobId;
    this.attempt = assignment.value.attempt;
    this.logger = deps.logger.child({ job: this.jobId, attempt: this.attempt });
    // A cancel that came while no run followed the job (say, while the worker restarted).
    const cancel = assignment.value.cancel;
    if (cancel) {
      this.causes.cancel = true;
      this.stopGraceMs = cancel.graceMs;
    }
    // Likewise an eviction: the run (re-attached, or not started yet) stops and the job goes back to Pending.
    const evict = assignment.value.evict;
    if (evict) {
      this.causes.evicted = evict.reason;
      this.stopGraceMs = Math.min(evict.graceMs, this.stopGraceMs ?? evict.graceMs);
    }
    this.done = this.run().catch((err: unknown) => {
      this.logger.error({ err }, 'job run failed unexpectedly');
    });
  }

  /** The assignment's own creation: a new assignment for the same job is a new attempt. */
  get createRevision(): string {
    return this.assignment.createRevision;
  }

  /**
   * True once this run wrote (or is writing) the attempt's end, which deletes
   * the assignment: its disappearance is then our doing, not a take-away.
   */
  get releasing(): boolean {
    return this.releasingFlag;
  }

  /**
   * Nothing was recorded although the assignment may still need it (the claim
   * or the final write could not reach etcd): a later run of the same
   * assignment should try again, finding what this one learned in the journal.
   */
  get retryable(): boolean {
    return this.claimFailed || this.recordFailed;
  }

  /** Stops the run; what is recorded depends on the cause (a taken run records nothing). */
  requestStop(cause: StopCause, graceMs: number): void {
    if (this.causes[cause]) return;
    this.causes[cause] = true;
    this.logger.info({ cause, graceMs }, 'stopping job');
    this.stopWithin(graceMs);
  }

  /**
   * The master wants the capacity back (assignment `evict`): stop the run
   * like a cancel, then record the attempt as evicted (the job goes back to
   * Pending). A run that already ended by itself keeps its own outcome.
   */
  requestEvict(reason: string, graceMs: number): void {
    if (this.causes.evicted !== undefined || this.runEnded) return;
    this.causes.evicted = reason;
    this.logger.info({ reason, graceMs }, 'evicting job');
    this.stopWithin(graceMs);
  }

  /**
   * etcd has been out of reach too long: once the lease lapses the master may
   * place this attempt elsewhere, so the run is killed now, without grace.
   * The attempt is recorded as lost with the node once etcd answers again.
   */
  fence(): void {
    if (this.runEnded || this.causes.fenced || this.causes.taken) return;
    this.causes.fenced = true;
    this.logger.warn('lost contact with etcd: killing the run');
    this.stopWithin(0);
    if (!this.execution && this.recovering) void this.abandon(this.recovering.job, this.recovering.record);
  }

  /** Leaves the run going but stops following it (the worker leaves, the job stays). */
  detach(): void {
    this.detached = true;
    clearTimeout(this.timeoutTimer);
    this.execution?.detach();
  }

  private get stopRequested(): boolean {
    const c = this.causes;
    return c.cancel || c.taken || c.worker || c.fenced || c.timeout || c.evicted !== undefined;
  }

  private stopWithin(graceMs: number): void {
    this.stopGraceMs = Math.min(graceMs, this.stopGraceMs ?? graceMs);
    if (this.execution && !this.runEnded) this.stopExecution(this.execution);
  }

  private stopExecution(execution: Execution): void {
    execution.stop(this.stopGraceMs ?? TAKEN_GRACE_MS).catch((err: unknown) => {
      this.logger.warn({ err }, 'could not stop the job');
    });
  }

  private output(sink: LogSink): OutputHandler {
    return (stream, data) => sink.push(stream, data);
  }

  private newSink(resume?: LogResume): LogSink {
    const { store, config } = this.deps;
    return new LogSink({
      write: (chunks) => store.appendLogChunks(this.assignment, chunks),
      ...(this.logLimit ?? { maxBytes: config.maxLogBytes }),
      chunkBytes: config.logChunkBytes,
      flushMs: config.logFlushMs,
      // Output of a run that goes on must not be dropped because etcd is away for a while.
      keepTrying: () => !this.detached && !this.causes.worker && !this.causes.taken,
      ...(resume ? { resume } : {}),
      onFenced: () => {
        this.logger.warn('log write fenced: the assignment was taken from this node');
        this.requestStop('taken', TAKEN_GRACE_MS);
      },
      onError: (err, seq) => this.logger.warn({ err, seq }, 'dropped log chunks after retries'),
    });
  }

  private async run(): Promise<void> {
    const { config, policy } = this.deps;
    let claimed: Job | undefined;
    let seen: Job | undefined;
    let result: OwnedUpdate;
    try {
      // The claim starts from the job the assignment carries (as placed), so it takes one transaction and
      // no read. `current` is that copy, or the stored job when it changed since (a cancel): the failed
      // transaction returns it and this runs again. Without a copy (an older master), the job is read first.
      const update = await this.deps.store.updateOwnedJob(this.assignment, (current) => {
        seen = current;
        claimed = undefined;
        this.releasingFlag = false;
        if (current.state !== 'Scheduled') return undefined;
        if (current.cancelRequested || this.causes.cancel) {
          // Cancelled before it started: nothing to run.
          this.releasingFlag = true;
          return jobAfterAttempt(current, { ...NO_CAUSES, cancel: true }, { type: 'not-started' }, policy);
        }
        if (this.causes.evicted !== undefined) {
          // Evicted before it started: straight back to Pending.
          this.releasingFlag = true;
          return jobAfterAttempt(current, { ...NO_CAUSES, evicted: this.causes.evicted }, { type: 'not-started' }, policy);
        }
        const running: Job = { ...current, state: 'Running', startedAt: Date.now(), node: config.nodeId };
        delete running.reason;
        claimed = running;
        return running;
      }, placedJob(this.assignment));
      result = update.outcome;
      if (update.outcome === 'updated') this.written = update.job;
    } catch (err) {
      if (err instanceof CorruptRecordError) {
        await this.failCorrupt(err);
        return;
      }
      // Nothing started: the worker may try this assignment again later.
      this.claimFailed = true;
      this.logger.warn({ err }, 'could not claim the job; will try again');
      return;
    }
    if (result === 'fenced') {
      this.logger.info("assignment is no longer this node's; not starting");
      if (seen) await this.abandon(seen, await this.deps.journal.read(this.jobId, this.attempt));
      return;
    }
    if (result === 'unchanged') {
      if (seen) await this.handleUnclaimable(seen);
      return;
    }
    if (!claimed) {
      this.logger.info(this.causes.evicted !== undefined ? 'evicted before it started' : 'cancelled before it started');
      return;
    }
    await this.execute(claimed);
  }

  private async execute(job: Job): Promise<void> {
    await this.limitLog(job);
    const sink = this.newSink();
    const executor = this.deps.executors.get(job.kind);
    if (!executor) {
      await this.failToStart(job, sink, `this node cannot run ${job.kind} jobs (no Docker engine here)`);
      return;
    }
    const wanted = (): boolean => !this.stopRequested;
    let execution: Execution | undefined;
    try {
      execution = wanted() ? await executor.start(job, this.assignment.value, this.output(sink), wanted) : undefined;
    } catch (err) {
      await this.failToStart(job, sink, errorMessage(err));
      return;
    }
    if (!execution) {
      // Stopped (a cancel, an eviction) before it started, or while it waited for its turn.
      await this.finish(job, sink, { type: 'not-started' });
      return;
    }
    if (this.detached) {
      execution.detach();
      return;
    }
    // Known at once, so a stop or detach during the journal write reaches it.
    this.execution = execution;
    await this.journalStart(this.record(job, execution));
    this.logger.info({ executor: executor.kind }, 'job started');
    await this.follow(job, execution, sink);
  }

  /** From a started (or re-attached) execution to the recorded end. */
  private async follow(job: Job, execution: Execution, sink: LogSink): Promise<void> {
    this.execution = execution;
    if (this.stopRequested) this.stopExecution(execution);
    this.armTimeout(job, execution);
    const result = await execution.exited;
    this.runEnded = true;
    clearTimeout(this.timeoutTimer);
    if (this.detached) return;
    await this.finish(job, sink, result, execution);
  }

  /** Counted from the execution's own start, so a re-attached run keeps its original deadline. */
  private armTimeout(job: Job, execution: Execution): void {
    const timeoutMs = job.timeoutMs;
    if (timeoutMs === undefined || timeoutMs <= 0) return;
    const left = timeoutMs - (Date.now() - execution.startedAt);
    this.timeoutTimer = setTimeout(() => {
      if (this.runEnded || this.causes.timeout) return;
      this.causes.timeout = true;
      this.logger.info({ timeoutMs, graceMs: this.deps.config.stopGraceMs }, 'job ran longer than its timeout; stopping it');
      this.stopWithin(this.deps.config.stopGraceMs);
    }, Math.max(0, left));
  }

  private async failToStart(job: Job, sink: LogSink, reason: string): Promise<void> {
    this.logger.warn({ reason }, 'job could not start');
    // The reason also goes to the log, where `titan logs` readers look first.
    sink.push('stderr', `[titan] ${reason}\n`);
    await this.finish(job, sink, { type: 'start-failed', reason });
  }

  /** Journals the run's start, and keeps the record: finish() adds the end to it without reading it back. */
  private async journalStart(record: RunRecord): Promise<void> {
    this.journaled = record;
    await this.deps.journal.write(record);
  }

  private record(job: Job, execution?: Execution): RunRecord {
    return { jobId: this.jobId, attempt: this.attempt, kind: job.kind, startedAt: execution?.startedAt ?? Date.now(), ...execution?.handle };
  }

  /**
   * Stores the rest of the output, removes what is left of the run, then
   * records the attempt's end, in that order: logs are complete and the
   * node's resources are really free before the assignment goes. The end is
   * journaled first, so a worker that dies in between still records it.
   */
  private async finish(job: Job, sink: LogSink, end: RunEnd, execution?: Execution, recorded?: StopCauses): Promise<void> {
    const { cancel, timeout, fenced, worker, evicted } = this.causes;
    const causes = recorded ?? { cancel, timeout, fenced, worker, ...(evicted !== undefined ? { evicted } : {}) };
    const started = this.journaled ?? (await this.deps.journal.read(this.jobId, this.attempt)) ?? this.record(job, execution);
    const journaled: RunRecord = { ...started, end: { result: end, causes } };
    if (fenced) {
      // The attempt is lost either way: free the node now, not when etcd is back.
      await this.deps.journal.write(journaled);
      if (execution) await this.release(execution);
      await sink.close();
    } else {
      await sink.close();
      await this.deps.journal.write(journaled);
      if (execution) await this.release(execution);
    }
    if (this.causes.taken || sink.fenced) {
      await this.deps.journal.remove(this.jobId, this.attempt);
      this.logger.info('the assignment was taken from this node; recording nothing');
      return;
    }
    this.releasingFlag = true;
    let next: Job | undefined;
    const result = await this.writeFinal((current) => {
      // Already final (someone else ended it): rewrite as is, which still releases the assignment.
      next = isFinal(current.state) ? current : jobAfterAttempt(current, causes, end, this.deps.policy, Date.now(), sink.storedBytes);
      return next;
    });
    if (result === undefined) {
      this.releasingFlag = false;
      this.recordFailed = true;
      return;
    }
    await this.deps.journal.remove(this.jobId, this.attempt);
    if (result === 'fenced') this.logger.info('final state fenced: the assignment was taken from this node');
    else this.logger.info({ state: next?.state, reason: next?.reason, exitCode: next?.exitCode }, 'attempt ended');
  }

  /** This attempt's share of the job's log budget (log-budget.ts); a failed read leaves the per-attempt cap alone. */
  private async limitLog(job: Job): Promise<void> {
    const { store, config } = this.deps;
    try {
      this.logLimit = await attemptLogLimit(store, job, config.maxLogBytes, config.jobLogBudgetBytes);
    } catch (err) {
      this.logger.warn({ err }, "could not read the job's earlier log sizes; this attempt gets the per-attempt cap");
    }
  }

  private async release(execution: Execution): Promise<void> {
    try {
      await execution.release();
    } catch (err) {
      this.logger.error({ err }, 'could not remove what is left of the run');
    }
  }

  /** Retries a while: a final write lost to a short etcd outage would leave the job Running. Fencing applies to every try. */
  private async writeFinal(mutate: (job: Job) => Job | undefined): Promise<OwnedUpdate | undefined> {
    const delays = this.causes.worker ? SHUTDOWN_WRITE_DELAYS_MS : FINAL_WRITE_DELAYS_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        const update = await this.deps.store.updateOwnedJob(this.assignment, mutate, this.written);
        if (update.outcome === 'updated') this.written = update.job;
        return update.outcome;
      } catch (err) {
        if (attempt >= delays.length || this.detached) {
          this.logger.error({ err }, 'could not record the end of the attempt; a later run of the assignment will');
          return undefined;
        }
        if (attempt === 0) this.logger.warn({ err }, 'recording the end of the attempt failed; retrying');
        await sleep(delays[attempt]);
      }
    }
  }

  /**
   * The job record this node was assigned cannot be read: nothing of it is
   * run; the job ends Failed (reason Corrupt) and the assignment goes, both
   * fenced by the assignment and the corrupt version.
   */
  private async failCorrupt(err: CorruptRecordError): Promise<void> {
    this.logger.warn({ key: err.key, why: err.why }, 'the assigned job record is corrupt: not running it');
    const next = corruptJobRecord(this.jobId, err.why, Date.now());
    if (!next) return;
    this.releasingFlag = true;
    try {
      const guard = [txnCompare.createRevision(this.assignment.key, this.assignment.createRevision)];
      await this.deps.store.replaceCorruptJob(err, next, { assignmentKey: this.assignment.key, guard });
    } catch (writeErr) {
      this.releasingFlag = false;
      this.logger.warn({ err: writeErr }, 'could not record the corrupt job as Failed; the master will');
    }
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
      await this.recover(job);
      return;
    }
    this.logger.warn({ state: job.state }, 'assignment for a job that is not Scheduled; ignoring it');
  }

  /**
   * Where the attempt's stored log ends, read again until etcd answers: the
   * run stays in the worker's hands meanwhile, so a fence can still kill it.
   * Undefined when the run was stopped first.
   */
  private async readLogPosition(): Promise<LogResume | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return resumeAfter(await this.deps.store.lastLogChunk(this.jobId, this.attempt));
      } catch (err) {
        if (this.stopRequested || this.detached) return undefined;
        if (attempt === 0) this.logger.warn({ err }, 'could not read the stored log; retrying');
        await sleep(FINAL_WRITE_DELAYS_MS[Math.min(attempt, FINAL_WRITE_DELAYS_MS.length - 1)]);
      }
    }
  }

  private async abandon(job: Job, record: RunRecord | undefined): Promise<void> {
    try {
      await this.deps.executors.get(record?.kind ?? job.kind)?.abandon(job, this.assignment.value, record);
    } catch (err) {
      this.logger.warn({ err }, 'could not clean up what is left of the run');
    }
  }

  /**
   * The job runs here according to etcd, but not in this process: an earlier
   * worker process started it. A container is followed again, its log resumed
   * right after the last stored chunk; an ended run's journaled outcome is
   * recorded; a host process, which cannot be re-attached, is killed and the
   * attempt counts as lost with the node.
   */
  private async recover(job: Job): Promise<void> {
    const { journal, executors } = this.deps;
    const record = await journal.read(this.jobId, this.attempt);
    if (record?.end) {
      // Its output is stored already (the end is journaled after the log): only the outcome is left to record.
      this.logger.info('recording how the run ended before the worker restarted');
      await this.abandon(job, record);
      await this.finish(job, this.newSink(), record.end.result, undefined, record.end.causes);
      return;
    }
    this.recovering = { job, record };
    const resume = await this.readLogPosition();
    if (resume === undefined) {
      // Stopped (fenced, taken, cancelled) before the run could be followed again: it goes.
      if (this.detached) return;
      await this.abandon(job, record);
      await this.finish(job, this.newSink(), { type: 'node-lost', reason: NOT_FOLLOWED_REASON });
      return;
    }
    await this.limitLog(job);
    const sink = this.newSink(resume);
    const executor = executors.get(job.kind);
    if (executor?.reattach) {
      let execution: Execution | undefined;
      try {
        execution = await executor.reattach(job, this.assignment.value, this.output(sink), resume.offsets);
      } catch (err) {
        this.claimFailed = true;
        this.logger.warn({ err }, "could not look for the run's container; will try again");
        return;
      }
      if (execution) {
        if (this.detached) {
          execution.detach();
          return;
        }
        if (record) this.journaled = record;
        else await this.journalStart(this.record(job, execution));
        this.logger.info({ after: resume.offsets, nextSeq: resume.nextSeq }, 're-attached to the run of an earlier worker process');
        await this.follow(job, execution, sink);
        return;
      }
      // A journaled start means the container existed: someone removed it while no worker watched.
      const end: RunEnd = record ? { type: 'lost', reason: CONTAINER_REMOVED_REASON } : { type: 'node-lost', reason: NOT_STARTED_REASON };
      this.logger.warn({ reason: end.reason }, 'the run of this attempt is gone');
      await this.finish(job, sink, end);
      return;
    }
    await this.abandon(job, record);
    const reason = executor ? SHELL_NOT_REATTACHED_REASON : `worker restarted; this node can no longer run ${job.kind} jobs`;
    this.logger.warn({ reason, pid: record?.pid }, 'could not re-attach the run');
    sink.push('stderr', `[titan] ${reason}\n`);
    await this.finish(job, sink, { type: 'node-lost', reason });
  }
}
