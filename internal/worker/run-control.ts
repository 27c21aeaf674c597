import type { Logger } from '../../pkg/log/logger.js';
import type { ExecutorKind } from '../../pkg/model/index.js';
import type { Execution } from './executor.js';
import { isFinal, nextPhase, type RunPhase } from './run-phase.js';
import { StopRequests, type StopCause } from './run-stop.js';

/** Grace for a run whose assignment was taken from this worker: it is no longer ours to finish. */
export const TAKEN_GRACE_MS = 2000;

/** Phases in which the run has yet to end: stops, fences and the timeout still reach it. */
const UNDER_WAY: readonly RunPhase[] = ['claiming', 'recovering', 'starting', 'running'];

/**
 * Where a run is (its RunPhase) and what the worker asks of it from outside:
 * stop it (cancel, taken away, the worker stopping with its jobs), evict it,
 * fence it (etcd out of reach), let it go (detach). JobRun, which runs the
 * attempt's course, moves the phase on; each change is logged at debug.
 */
export abstract class RunControl {
  protected readonly logger: Logger;
  protected readonly stops = new StopRequests();
  private phaseValue: RunPhase = 'claiming';
  /** The execution followed in the 'running' phase (kept after it, for detach). */
  private execution: Execution | undefined;
  private executorKind: ExecutorKind | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;
  /** In the 'recovering' phase: kills the earlier process's run, there being no execution yet. */
  private killUnfollowed: (() => void) | undefined;
  /** Grace of a stop for the job's timeout. */
  private readonly timeoutGraceMs: number;

  protected constructor(logger: Logger, timeoutGraceMs: number) {
    this.logger = logger;
    this.timeoutGraceMs = timeoutGraceMs;
  }

  get phase(): RunPhase {
    return this.phaseValue;
  }

  /**
   * True once this run reports (or reported) the attempt's end, after which
   * the master deletes the assignment: its disappearance is then the
   * expected end, not a take-away.
   */
  get releasing(): boolean {
    return this.phaseValue === 'reporting' || this.phaseValue === 'reported';
  }

  /**
   * Nothing was recorded although the assignment may still need it (the claim
   * or the final write could not reach etcd): a later run of the same
   * assignment should try again, finding what this one learned in the journal.
   */
  get retryable(): boolean {
    return this.phaseValue === 'retry';
  }

  /** The executor of the run while it goes on here (started or re-attached, not ended, not detached). */
  get liveExecutor(): ExecutorKind | undefined {
    return this.phaseValue === 'running' ? this.executorKind : undefined;
  }

  /** Stops the run; what is recorded depends on the cause (a taken run records nothing). */
  requestStop(cause: StopCause, graceMs: number): void {
    if (!this.stops.add(cause, graceMs)) return;
    this.logger.info({ cause, graceMs }, 'stopping job');
    this.stopIfFollowed();
  }

  /**
   * The master wants the capacity back (assignment `evict`): stop the run
   * like a cancel, then record the attempt as evicted (the job goes back to
   * Pending). A run that already ended keeps its own outcome.
   */
  requestEvict(reason: string, graceMs: number): void {
    if (!this.underWay() || !this.stops.evict(reason, graceMs)) return;
    this.logger.info({ reason, graceMs }, 'evicting job');
    this.stopIfFollowed();
  }

  /**
   * etcd has been out of reach too long: once the lease lapses the master may
   * place this attempt elsewhere, so the run is killed now, without grace.
   * The attempt is recorded as lost with the node once etcd answers again.
   */
  fence(): void {
    if (!this.underWay() || this.stops.has('taken') || !this.stops.add('fenced', 0)) return;
    this.logger.warn('lost contact with etcd: killing the run');
    this.stopIfFollowed();
    if (this.is('recovering')) this.killUnfollowed?.();
  }

  /** Leaves the run going but stops following it (the worker leaves, the job stays). */
  detach(): void {
    if (isFinal(this.phaseValue)) return;
    this.enter('detached');
    clearTimeout(this.timeoutTimer);
    this.execution?.detach();
  }

  /**
   * Moves the run on (run-phase.ts): a change the table does not allow throws,
   * a detached run stays detached while what was in flight completes.
   */
  protected enter(to: RunPhase): void {
    const from = this.phaseValue;
    this.phaseValue = nextPhase(from, to);
    if (this.phaseValue === to) this.logger.debug({ from, to }, 'job run phase');
    else this.logger.debug({ from, wanted: to }, 'job run is detached; it stays so');
  }

  /** A method, not a field read, so TypeScript does not narrow the phase across awaits. */
  protected is(phase: RunPhase): boolean {
    return this.phaseValue === phase;
  }

  /** Finding an earlier process's run again; `kill` is what a fence does to it meanwhile. */
  protected enterRecovering(kill: () => void): void {
    this.enter('recovering');
    this.killUnfollowed = kill;
  }

  /**
   * Follows a started or re-attached execution: from now on stops reach it,
   * and so does the job's timeout, counted from the execution's own start so
   * a re-attached run keeps its original deadline.
   */
  protected enterRunning(execution: Execution, kind: ExecutorKind, timeoutMs: number | undefined): void {
    this.execution = execution;
    this.executorKind = kind;
    this.enter('running');
    this.stopIfFollowed();
    if (timeoutMs === undefined || timeoutMs <= 0) return;
    const left = timeoutMs - (Date.now() - execution.startedAt);
    this.timeoutTimer = setTimeout(() => {
      if (!this.is('running') || !this.stops.add('timeout', this.timeoutGraceMs)) return;
      this.logger.info({ timeoutMs, graceMs: this.timeoutGraceMs }, 'job ran longer than its timeout; stopping it');
      this.stopIfFollowed();
    }, Math.max(0, left));
  }

  /** The followed execution exited: there is nothing left to stop or time out. */
  protected executionEnded(): void {
    clearTimeout(this.timeoutTimer);
  }

  private underWay(): boolean {
    return UNDER_WAY.includes(this.phaseValue);
  }

  private stopIfFollowed(): void {
    if (!this.is('running') || !this.execution || !this.stops.any) return;
    this.execution.stop(this.stops.graceMs(TAKEN_GRACE_MS)).catch((err: unknown) => {
      this.logger.warn({ err }, 'could not stop the job');
    });
  }
}
