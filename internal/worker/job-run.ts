import type { Logger } from '../../pkg/log/logger.js';
import type { Assignment, ExecutorKind, Job, RetryPolicy, RunReport } from '../../pkg/model/index.js';
import { CorruptRecordError, placedJob, type ReportWriteOutcome, type Store, type Versioned } from '../../pkg/store/index.js';
import type { WorkerConfig } from './config.js';
import { errorMessage, type Execution, type Executor, type OutputHandler } from './executor.js';
import type { LogSink } from './log-sink.js';
import {
  CONTAINER_REMOVED_REASON,
  NOT_STARTED_REASON,
  SHELL_NOT_REATTACHED_REASON,
  NOT_FOLLOWED_REASON,
  TitanError,
  attemptOutcome,
  type RunEnd,
  type StopCauses,
} from '../../pkg/model/index.js';
import type { RunJournal, RunRecord } from './run-journal.js';
import { attemptEndLabel, type RunMetrics } from './metrics.js';
import { RunControl, TAKEN_GRACE_MS } from './run-control.js';
import { isFinal } from './run-phase.js';
import type { ReportBatcher } from './report-batcher.js';
import { RunLog } from './run-log.js';
import { endOf, writeEndReport, type ReportOutcome } from './run-report.js';


export interface JobRunDeps {
  store: Store;
  /** Where the run's claim and end report go: batched with the other runs' (report-batcher.ts). */
  reports: ReportBatcher;
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
 * speak for a newer attempt. Where the run is in all this, and what stops
 * it, is RunControl's.
 */
export class JobRun extends RunControl {
  readonly jobId: string;
  readonly attempt: number;
  readonly assignment: Versioned<Assignment>;
  /** Settles when the run is over (never rejects). */
  readonly done: Promise<void>;
  private readonly deps: JobRunDeps;
  private readonly log: RunLog;
  /** The start record this run journaled or found in the journal (see journalStart). */
  private journaled: RunRecord | undefined;
  /** When the run started, as reported (undefined: it has not). */
  private startedAt: number | undefined;
  /** When this worker took the assignment up: the start latency counts from here. */
  private readonly takenUpAt = performance.now();

  /**
   * @param options.unreported no report of this attempt can exist (the
   *   worker saw the assignment created, and runs it for the first time): the
   *   claim skips reading for one
   */
  constructor(deps: JobRunDeps, assignment: Versioned<Assignment>, private readonly options: { unreported?: boolean } = {}) {
    super(deps.logger.child({ job: assignment.value.jobId, attempt: assignment.value.attempt }), deps.config.stopGraceMs);
    this.deps = deps;
    this.assignment = assignment;
    this.jobId = assignment.value.jobId;
    this.attempt = assignment.value.attempt;
    // A cancel or an eviction that came while no run followed the job (say, while the worker restarted):
    // the run (re-attached, or not started yet) stops; an evicted job goes back to Pending.
    this.stops.addFlagsOf(assignment.value);
    this.log = new RunLog({
      store: deps.store,
      config: deps.config,
      ...(deps.metrics ? { metrics: deps.metrics } : {}),
      assignment,
      logger: this.logger,
      // Output of a run that goes on must not be dropped because etcd is away for a while.
      keepTrying: () => !this.is('detached') && !this.stops.has('worker') && !this.stops.has('taken'),
      onFenced: () => this.requestStop('taken', TAKEN_GRACE_MS),
    });
    this.done = this.run()
      .then(() => {
        // Every way through ends in a final phase; one that does not is a bug to see, not a run to forget.
        if (!isFinal(this.phase)) throw new TitanError('Internal', `job run ended in phase ${this.phase}`);
      })
      .catch((err: unknown) => {
        this.logger.error({ err }, 'job run failed unexpectedly');
      });
  }

  /** The assignment's own creation: a new assignment for the same job is a new attempt. */
  get createRevision(): string {
    return this.assignment.createRevision;
  }

  private output(sink: LogSink): OutputHandler {
    return (stream, data) => sink.push(stream, data);
  }

  private async run(): Promise<void> {
    let job: Job;
    try {
      job = placedJob(this.assignment);
    } catch (err) {
      if (!(err instanceof CorruptRecordError)) throw err;
      // Nothing of a job the node cannot read is run: the attempt ends as failed to start.
      this.logger.warn({ key: err.key, why: err.why }, "the assignment's copy of the job is corrupt: not running it");
      const outcome = await this.report({ state: 'Ended', end: endOf({ type: 'start-failed', reason: `the job could not be read (${err.why})` }) });
      if (outcome === 'reported') this.deps.metrics?.attemptEnded('start-failed');
      this.settleReport(outcome);
      return;
    }
    let reported: RunReport | undefined;
    try {
      if (!this.options.unreported) reported = (await this.deps.store.getReport(this.deps.config.nodeId, this.jobId))?.value;
    } catch (err) {
      // A report of ours that does not read is overwritten; one that cannot be read now is asked for again later.
      if (!(err instanceof CorruptRecordError)) {
        this.logger.warn({ err }, 'could not read what this node reported of the job; will try again');
        this.enter('retry');
        return;
      }
    }
    if (reported?.attempt === this.attempt && reported.state === 'Ended') {
      // Reported already (by an earlier process): the master has yet to fold it.
      this.enter('reported');
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
      this.stops.addFlagsOf(seen.value);
      if (this.stops.has('cancel') || this.stops.evicted !== undefined) {
        this.logger.info(this.stops.evicted !== undefined ? 'evicted before it started' : 'cancelled before it started');
        await this.finish(job, this.log.sink(), { type: 'not-started' });
        return;
      }
      const startedAt = Date.now();
      let claim: ReportWriteOutcome;
      try {
        claim = await this.deps.reports.write({ assignment: seen, report: { jobId: this.jobId, attempt: this.attempt, state: 'Running', startedAt }, fence: 'claim' });
      } catch (err) {
        // Nothing started: the worker may try this assignment again later.
        this.logger.warn({ err }, 'could not report the start of the job; will try again');
        this.enter('retry');
        return;
      }
      if (claim.outcome === 'fenced') {
        this.logger.info("assignment is no longer this node's; not starting");
        await this.abandon(job, await this.deps.journal.read(this.jobId, this.attempt));
        this.enter('not-ours');
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

  private async execute(job: Job): Promise<void> {
    this.enter('starting');
    await this.log.limitTo(job);
    const sink = this.log.sink();
    const executor = this.deps.executors.get(job.kind);
    if (!executor) {
      await this.failToStart(job, sink, `this node cannot run ${job.kind} jobs (no Docker engine here)`);
      return;
    }
    const wanted = (): boolean => !this.stops.any;
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
    if (this.is('detached')) {
      execution.detach();
      return;
    }
    // Known at once, so a stop or detach during the journal write reaches it.
    this.enterRunning(execution, executor.kind, job.timeoutMs);
    this.deps.metrics?.started(executor.kind, (performance.now() - this.takenUpAt) / 1000);
    await this.journalStart(this.record(job, execution));
    this.logger.info({ executor: executor.kind }, 'job started');
    await this.follow(job, execution, sink);
  }

  /** From a started (or re-attached) execution to the recorded end. */
  private async follow(job: Job, execution: Execution, sink: LogSink): Promise<void> {
    const result = await execution.exited;
    this.executionEnded();
    if (this.is('detached')) return;
    await this.finish(job, sink, result, execution);
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
    this.enter('finishing');
    const causes = recorded ?? this.stops.recorded();
    const started = this.journaled ?? (await this.deps.journal.read(this.jobId, this.attempt)) ?? this.record(job, execution);
    const journaled: RunRecord = { ...started, end: { result: end, causes } };
    if (this.stops.has('fenced')) {
      // The attempt is lost either way: free the node now, not when etcd is back.
      await this.deps.journal.write(journaled);
      if (execution) await this.release(execution);
      await sink.close();
    } else {
      await sink.close();
      await this.deps.journal.write(journaled);
      if (execution) await this.release(execution);
    }
    if (this.stops.has('taken') || sink.fenced) {
      await this.deps.journal.remove(this.jobId, this.attempt);
      this.logger.info('the assignment was taken from this node; recording nothing');
      this.enter('not-ours');
      return;
    }
    const outcome = await this.report({ state: 'Ended', end: endOf(end, causes, sink.storedBytes) });
    if (outcome === 'unwritten') return;
    await this.deps.journal.remove(this.jobId, this.attempt);
    if (outcome === 'fenced') {
      this.logger.info('end not reported: the assignment was taken from this node');
    } else {
      this.deps.metrics?.attemptEnded(attemptEndLabel(attemptOutcome(job, causes, end, Date.now())));
      this.logger.info({ end: end.type, exitCode: end.type === 'exited' ? end.exitCode : undefined, causes }, 'attempt ended');
    }
    this.settleReport(outcome);
  }

  /**
   * Reports the attempt's end (run-report.ts). When it could not be written
   * the run is to be retried at once: a later run of the assignment reports
   * it from the journal. Otherwise the caller settles the run (settleReport)
   * once it cleaned up after the report.
   */
  private async report(report: Omit<RunReport, 'jobId' | 'attempt' | 'startedAt'>): Promise<ReportOutcome> {
    this.enter('reporting');
    const full: RunReport = {
      jobId: this.jobId,
      attempt: this.attempt,
      ...(this.startedAt !== undefined ? { startedAt: this.startedAt } : {}),
      ...report,
    };
    const outcome = await writeEndReport(full, {
      reports: this.deps.reports,
      assignment: this.assignment,
      logger: this.logger,
      shuttingDown: this.stops.has('worker'),
      letGo: () => this.is('detached'),
    });
    if (outcome === 'unwritten') this.enter('retry');
    return outcome;
  }

  private settleReport(outcome: ReportOutcome): void {
    if (outcome !== 'unwritten') this.enter(outcome === 'reported' ? 'reported' : 'not-ours');
  }

  private async release(execution: Execution): Promise<void> {
    try {
      await execution.release();
    } catch (err) {
      this.logger.error({ err }, 'could not remove what is left of the run');
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
      await this.finish(job, this.log.sink(), record.end.result, undefined, record.end.causes);
      return;
    }
    this.enterRecovering(() => void this.abandon(job, record));
    const resume = await this.log.storedEnd(() => this.stops.any || this.is('detached'));
    if (resume === undefined) {
      // Stopped (fenced, taken, cancelled) before the run could be followed again: it goes.
      if (this.is('detached')) return;
      await this.abandon(job, record);
      await this.finish(job, this.log.sink(), { type: 'node-lost', reason: NOT_FOLLOWED_REASON });
      return;
    }
    await this.log.limitTo(job);
    const sink = this.log.sink(resume);
    const executor = executors.get(job.kind);
    if (executor?.reattach) {
      let execution: Execution | undefined;
      try {
        execution = await executor.reattach(job, this.assignment.value, this.output(sink), resume.offsets);
      } catch (err) {
        this.logger.warn({ err }, "could not look for the run's container; will try again");
        this.enter('retry');
        return;
      }
      if (execution) {
        if (this.is('detached')) {
          execution.detach();
          return;
        }
        this.enterRunning(execution, executor.kind, job.timeoutMs);
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
