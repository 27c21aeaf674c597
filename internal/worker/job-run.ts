import type { Logger } from '../../pkg/log/logger.js';
import type { Assignment, ExecutorKind, Job, RetryPolicy, RunReport } from '../../pkg/model/index.js';
import { CorruptRecordError, placedJob, type Store, type Versioned } from '../../pkg/store/index.js';
import type { WorkerConfig } from './config.js';
import { errorMessage, sleep, type Execution, type Executor, type OutputHandler } from './executor.js';
import { attemptLogLimit, type LogLimit } from './log-budget.js';
import { LogSink, resumeAfter, type LogResume } from './log-sink.js';
import {
  CONTAINER_REMOVED_REASON,
  NO_CAUSES,
  NOT_STARTED_REASON,
  SHELL_NOT_REATTACHED_REASON,
  NOT_FOLLOWED_REASON,
  attemptOutcome,
  type RunEnd,
  type StopCauses,
} from '../../pkg/model/index.js';
import type { RunJournal, RunRecord } from './run-journal.js';
import { attemptEndLabel, type RunMetrics } from './metrics.js';

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
  metrics?: RunMetrics;
}

/**
 * One attempt of one job on this node, from its assignment to its reported
 * end: report it Running and run it, or re-attach to the run an earlier
 * worker process started; store its output; report how it ended. A node
 * never writes the job: it writes reports under its own key prefix
 * (RunReport), and the master decides what they mean for the job. Every
 * write is fenced by the assignment, so a run that was taken away can never
 * speak for a newer attempt.
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
  /** When the run started, as reported (undefined: it has not). */
  private startedAt: number | undefined;
  /** When this worker took the assignment up: the start latency counts from here. */
  private readonly takenUpAt = performance.now();
  /** The executor of the run being followed (set with `execution`). */
  private executorKind: ExecutorKind | undefined;

  constructor(deps: JobRunDeps, assignment: Versioned<Assignment>) {
    this.deps = deps;
    this.assignment = assignment;
    this.jobId = assignment.value.jobId;
    this.attempt = assignment.value.attempt;
    this.logger = deps.logger.child({ job: this.jobId, attempt: this.attempt });
    // A cancel or an eviction that came while no run followed the job (say, while the worker restarted):
    // the run (re-attached, or not started yet) stops; an evicted job goes back to Pending.
    this.applyFlags(assignment.value);
    this.done = this.run().catch((err: unknown) => {
      this.logger.error({ err }, 'job run failed unexpectedly');
    });
  }

  /** The assignment's own creation: a new assignment for the same job is a new attempt. */
  get createRevision(): string {
    return this.assignment.createRevision;
  }

  /**
   * True once this run reported (or is reporting) the attempt's end, after
   * which the master deletes the assignment: its disappearance is then the
   * expected end, not a take-away.
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

  /** The executor of the run while it goes on here (started or re-attached, not ended, not detached). */
  get liveExecutor(): ExecutorKind | undefined {
    return this.execution && !this.runEnded && !this.detached ? this.executorKind : undefined;
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
      ...(this.deps.metrics ? { onStored: this.deps.metrics.logStored.bind(this.deps.metrics) } : {}),
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
    let job: Job;
    try {
      job = placedJob(this.assignment);
    } catch (err) {
      if (!(err instanceof CorruptRecordError)) throw err;
      // Nothing of a job the node cannot read is run: the attempt ends as failed to start.
      this.logger.warn({ key: err.key, why: err.why }, "the assignment's copy of the job is corrupt: not running it");
      const reported = await this.report({ state: 'Ended', end: this.endOf({ type: 'start-failed', reason: `the job could not be read (${err.why})` }) });
      if (reported === 'reported') this.deps.metrics?.attemptEnded('start-failed');
      return;
    }
    let reported: RunReport | undefined;
    try {
      reported = (await this.deps.store.getReport(this.deps.config.nodeId, this.jobId))?.value;
    } catch (err) {
      // A report of ours that does not read is overwritten; one that cannot be read now is asked for again later.
      if (!(err instanceof CorruptRecordError)) {
        this.claimFailed = true;
        this.logger.warn({ err }, 'could not read what this node reported of the job; will try again');
        return;
      }
    }
    if (reported?.attempt === this.attempt && reported.state === 'Ended') {
      // Reported already (by an earlier process): the master has yet to fold it.
      this.releasingFlag = true;
      return;
    }
    if (reported?.attempt === this.attempt) {
      this.startedAt = reported.startedAt;
      await this.recover(job);
      return;
    }
    // The claim: the master learns the run started before anything runs, and only from the assignment as seen.
    let seen: Versioned<Assignment> = this.assignment;
    for (;;) {
      this.applyFlags(seen.value);
      if (this.causes.cancel || this.causes.evicted !== undefined) {
        this.logger.info(this.causes.evicted !== undefined ? 'evicted before it started' : 'cancelled before it started');
        await this.finish(job, this.newSink(), { type: 'not-started' });
        return;
      }
      const startedAt = Date.now();
      let claim: Awaited<ReturnType<Store['claimRun']>>;
      try {
        claim = await this.deps.store.claimRun(seen, { jobId: this.jobId, attempt: this.attempt, state: 'Running', startedAt });
      } catch (err) {
        // Nothing started: the worker may try this assignment again later.
        this.claimFailed = true;
        this.logger.warn({ err }, 'could not report the start of the job; will try again');
        return;
      }
      if (claim.outcome === 'fenced') {
        this.logger.info("assignment is no longer this node's; not starting");
        await this.abandon(job, await this.deps.journal.read(this.jobId, this.attempt));
        return;
      }
      if (claim.outcome === 'changed') {
        seen = claim.assignment; // a cancel or an eviction came: look again
        continue;
      }
      this.startedAt = startedAt;
      await this.execute(job);
      return;
    }
  }

  /** A cancel or an eviction flagged on the assignment, as the run's causes (the worker's watch applies later ones). */
  private applyFlags(assignment: Assignment): void {
    if (assignment.cancel && !this.causes.cancel) {
      this.causes.cancel = true;
      this.stopGraceMs = Math.min(assignment.cancel.graceMs, this.stopGraceMs ?? assignment.cancel.graceMs);
    }
    if (assignment.evict && this.causes.evicted === undefined) {
      this.causes.evicted = assignment.evict.reason;
      this.stopGraceMs = Math.min(assignment.evict.graceMs, this.stopGraceMs ?? assignment.evict.graceMs);
    }
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
    this.executorKind = executor.kind;
    this.deps.metrics?.started(executor.kind, (performance.now() - this.takenUpAt) / 1000);
    await this.journalStart(this.record(job, execution));
    this.logger.info({ executor: executor.kind }, 'job started');
    await this.follow(job, execution, sink);
  }

  /** From a started (or re-attached) execution to the recorded end. */
  private async follow(job: Job, execution: Execution, sink: LogSink): Promise<void> {
    this.execution = execution;
    this.executorKind ??= job.kind;
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
    const result = await this.report({ state: 'Ended', end: this.endOf(end, causes, sink.storedBytes) });
    if (result === undefined) return;
    await this.deps.journal.remove(this.jobId, this.attempt);
    if (result === 'fenced') {
      this.logger.info('end not reported: the assignment was taken from this node');
      return;
    }
    this.deps.metrics?.attemptEnded(attemptEndLabel(attemptOutcome(job, causes, end, Date.now())));
    this.logger.info({ end: end.type, exitCode: end.type === 'exited' ? end.exitCode : undefined, causes }, 'attempt ended');
  }

  private endOf(result: RunEnd, causes: StopCauses = NO_CAUSES, logBytes?: number): NonNullable<RunReport['end']> {
    return { result, causes, finishedAt: Date.now(), ...(logBytes !== undefined ? { logBytes } : {}) };
  }

  /**
   * Reports the attempt's end (fenced by the assignment), retrying a while: a
   * report lost to a short etcd outage would leave the job Running.
   * Undefined when it could not be written; a later run of the assignment
   * reports it from the journal.
   */
  private async report(report: Omit<RunReport, 'jobId' | 'attempt' | 'startedAt'>): Promise<'reported' | 'fenced' | undefined> {
    this.releasingFlag = true;
    const full: RunReport = {
      jobId: this.jobId,
      attempt: this.attempt,
      ...(this.startedAt !== undefined ? { startedAt: this.startedAt } : {}),
      ...report,
    };
    const delays = this.causes.worker ? SHUTDOWN_WRITE_DELAYS_MS : FINAL_WRITE_DELAYS_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.deps.store.putReport(this.assignment, full)) ? 'reported' : 'fenced';
      } catch (err) {
        if (attempt >= delays.length || this.detached) {
          this.logger.error({ err }, 'could not report the end of the attempt; a later run of the assignment will');
          this.releasingFlag = false;
          this.recordFailed = true;
          return undefined;
        }
        if (attempt === 0) this.logger.warn({ err }, 'reporting the end of the attempt failed; retrying');
        await sleep(delays[attempt]);
      }
    }
  }

  /** This attempt's share of the job's log budget (log-budget.ts); a failed read leaves the per-attempt cap alone. */
  private async limitLog(job: Job): Promise<void> {
    const { store, config } = this.deps;
    try {
      this.logLimit = await attemptLogLimit(store, job, config.nodeId, config.maxLogBytes, config.jobLogBudgetBytes);
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

  /**
   * Where the attempt's stored log ends, read again until etcd answers: the
   * run stays in the worker's hands meanwhile, so a fence can still kill it.
   * Undefined when the run was stopped first.
   */
  private async readLogPosition(): Promise<LogResume | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return resumeAfter(await this.deps.store.lastLogChunk(this.deps.config.nodeId, this.jobId, this.attempt));
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
