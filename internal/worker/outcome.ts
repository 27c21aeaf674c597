import type { Job, JobState } from '../../pkg/model/index.js';
import type { ExecutionResult } from './executor.js';

/** Why the worker stopped a run before it ended by itself. */
export interface StopCauses {
  /** The user cancelled the job. */
  cancel: boolean;
  /** The worker is shutting down with stopJobs. */
  worker: boolean;
}

export interface Outcome {
  state: Extract<JobState, 'Succeeded' | 'Failed' | 'Cancelled'>;
  reason?: string;
  exitCode?: number;
}

export const CANCELLED_REASON = 'cancelled by user';
export const WORKER_STOPPED_REASON = 'worker stopped';

/**
 * The final state of an attempt. `run` is the execution's result, or a
 * start failure's message. A user's cancel wins over everything; an exit
 * that raced a cancel flag the worker had not yet seen also counts as
 * cancelled unless it succeeded.
 */
export function finalOutcome(current: Job, causes: StopCauses, run: ExecutionResult | { startError: string }): Outcome {
  const exitCode = 'exitCode' in run ? run.exitCode : undefined;
  const withCode = (o: Outcome): Outcome => (exitCode === undefined ? o : { ...o, exitCode });
  if (causes.cancel || (current.cancelRequested === true && exitCode !== 0)) {
    return withCode({ state: 'Cancelled', reason: CANCELLED_REASON });
  }
  if ('startError' in run) return { state: 'Failed', reason: run.startError };
  if (causes.worker && exitCode !== 0) return withCode({ state: 'Failed', reason: WORKER_STOPPED_REASON });
  if (run.error !== undefined) return withCode({ state: 'Failed', reason: run.error });
  if (run.exitCode === 0) return withCode({ state: 'Succeeded' });
  return withCode({ state: 'Failed', reason: `exited with code ${run.exitCode}` });
}

/** The job in its final state; fields of the running phase that no longer apply are dropped. */
export function applyOutcome(job: Job, outcome: Outcome, now: number): Job {
  const next: Job = { ...job, state: outcome.state, finishedAt: now };
  delete next.reason;
  delete next.exitCode;
  if (outcome.reason !== undefined) next.reason = outcome.reason;
  if (outcome.exitCode !== undefined) next.exitCode = outcome.exitCode;
  return next;
}
