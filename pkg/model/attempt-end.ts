import type { Job } from './job.js';
import { endAttempt, type AttemptOutcome, type RetryPolicy } from './retry.js';

/**
 * How an attempt ended, in the terms a node reports it (RunReport) and the
 * retry policy reads it: pure, so the master decides what a node's report
 * means for the job, and nodes only say what happened.
 */

/** How a run ended, as far as the executor can tell. */
export type ExecutionResult =
  /** The process ended; `detail` replaces the usual "exited with code N" (e.g. out of memory). */
  | { type: 'exited'; exitCode: number; detail?: string }
  /** The run vanished without an exit of its own: its container was removed behind our back. */
  | { type: 'lost'; reason: string };

/** Why the worker stopped a run before it ended by itself. */
export interface StopCauses {
  /** The user cancelled the job. */
  cancel: boolean;
  /** The run outlived the job's timeoutMs. */
  timeout: boolean;
  /** The worker lost etcd for too long and killed the run: the master may place it elsewhere. */
  fenced: boolean;
  /** The worker is shutting down with stopJobs. */
  worker: boolean;
  /**
   * The master evicted the attempt (assignment `evict`), with this reason.
   * Optional so journals written before evictions existed still read.
   */
  evicted?: string;
}

export const NO_CAUSES: StopCauses = { cancel: false, timeout: false, fenced: false, worker: false };

/** How an attempt ended on this node: an execution's result, or the reason it never ran (on). */
export type RunEnd =
  | ExecutionResult
  /** Image pull, container create or spawn failed: nothing ran. */
  | { type: 'start-failed'; reason: string }
  /** The node lost the run itself (a worker restart that could not re-attach). */
  | { type: 'node-lost'; reason: string }
  /** Stopped before it started (the causes say why). */
  | { type: 'not-started' };

export const CANCELLED_REASON = 'cancelled by user';
export const WORKER_STOPPED_REASON = 'worker stopped';
export const FENCED_REASON = 'worker lost contact with etcd';
export const CONTAINER_REMOVED_REASON = 'the container was removed outside Titan';
export const SHELL_NOT_REATTACHED_REASON = 'worker restarted; the shell process could not be re-attached';
export const NOT_STARTED_REASON = 'worker restarted before the container started';
export const NOT_FOLLOWED_REASON = 'worker restarted and was stopped before it could follow the run again';

const trim = (value: number): string => value.toFixed(1).replace(/\.0$/, '');

/** A timeout as the user would have written it: 1.5s, 2m, 1h30m. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${trim(ms / 1000)}s`;
  const parts: string[] = [];
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1000;
  if (hours > 0) parts.push(`${hours}h`);
  if (minutes > 0) parts.push(`${minutes}m`);
  if (seconds > 0) parts.push(`${trim(seconds)}s`);
  return parts.join('');
}

export function timeoutReason(timeoutMs: number): string {
  return `Timeout: ran longer than ${formatDuration(timeoutMs)}`;
}

/**
 * What the attempt's end means, in the retry policy's terms. A user's cancel
 * wins over everything (an exit that raced a cancel flag the worker had not
 * seen yet also counts as cancelled unless it succeeded); then an eviction
 * (the job goes back to Pending); then the worker's own reasons for
 * stopping the run; then how the run itself ended.
 */
export function attemptOutcome(current: Job, causes: StopCauses, end: RunEnd, now: number): AttemptOutcome {
  const exitCode = end.type === 'exited' ? end.exitCode : undefined;
  const failed = (failure: AttemptOutcome['failure'], reason: string): AttemptOutcome => ({
    state: 'Failed',
    failure,
    reason,
    now,
    ...(exitCode !== undefined ? { exitCode } : {}),
  });
  if (causes.cancel || (current.cancelRequested === true && exitCode !== 0)) {
    return { state: 'Cancelled', reason: current.cancelReason ?? CANCELLED_REASON, now, ...(exitCode !== undefined ? { exitCode } : {}) };
  }
  if (end.type === 'start-failed') return failed('start-failed', end.reason);
  // Stopped to give the capacity back (the run had not ended by itself when the eviction came):
  // Pending again at no cost. A run that had already timed out still fails as timed out.
  if (causes.evicted !== undefined && !causes.timeout) {
    return { state: 'Pending', failure: 'evicted', reason: causes.evicted, now, ...(exitCode !== undefined ? { exitCode } : {}) };
  }
  // Killed by the worker itself: whatever code the kill produced says nothing about the job.
  if (causes.fenced) return failed('node-lost', FENCED_REASON);
  if (end.type === 'node-lost') return failed('node-lost', end.reason);
  if (causes.timeout) return failed('timeout', timeoutReason(current.timeoutMs ?? 0));
  if (end.type === 'lost') return failed('lost-container', end.reason);
  if (causes.worker && exitCode !== 0) return failed('node-lost', WORKER_STOPPED_REASON);
  if (end.type === 'not-started') return failed('node-lost', 'stopped before it started');
  if (end.exitCode === 0) return { state: 'Succeeded', exitCode: 0, now };
  return failed('exit', end.detail ?? `exited with code ${end.exitCode}`);
}

/**
 * The job after this attempt: final, or Pending again for another attempt.
 * endAttempt (pkg/model/retry.ts) decides; the reason and exit code of the
 * running phase are dropped first so only this attempt's stay. `logBytes`,
 * what the attempt's log stored, goes into its history record.
 */
export function jobAfterAttempt(current: Job, causes: StopCauses, end: RunEnd, policy: RetryPolicy, now = Date.now(), logBytes?: number): Job {
  const { reason: _reason, exitCode: _exitCode, ...running } = current;
  const next = endAttempt(running, attemptOutcome(current, causes, end, now), policy);
  const history = next.history ?? [];
  const last = history[history.length - 1];
  // The attempt's log size goes with its record, so the next attempt knows what is left of the job's budget.
  if (logBytes === undefined || last?.attempt !== current.attempt || last.logBytes !== undefined) return next;
  return { ...next, history: [...history.slice(0, -1), { ...last, logBytes }] };
}
