import { TitanError } from './errors.js';
import type { AttemptRecord, FailureKind, Job, JobState } from './job.js';
import { transition, type TransitionPatch } from './transitions.js';

export interface RetryPolicy {
  /** Attempts lost with their node are retried this often, whatever the job's own retries. */
  nodeLostRetries: number;
  /** First backoff; doubles per failure up to maxDelayMs, with jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { nodeLostRetries: 3, baseDelayMs: 1000, maxDelayMs: 60_000 };

export interface AttemptOutcome {
  /**
   * `Pending`: the cluster took the attempt back (eviction, failure
   * `evicted`): the job is queued again at once, no retry budget spent.
   */
  state: Extract<JobState, 'Succeeded' | 'Failed' | 'Cancelled' | 'Pending'>;
  /** Why a Failed attempt failed; decides which retry budget it draws on. */
  failure?: FailureKind;
  exitCode?: number;
  reason?: string;
  now: number;
}

/** Exponential backoff with "equal jitter": half fixed, half random, so retries do not arrive in lockstep. */
export function backoffDelay(failures: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failures - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

function recordOf(job: Job, outcome: AttemptOutcome): AttemptRecord {
  return {
    attempt: job.attempt,
    ...(job.node !== undefined ? { node: job.node } : {}),
    ...(job.scheduledAt !== undefined ? { scheduledAt: job.scheduledAt } : {}),
    ...(job.startedAt !== undefined ? { startedAt: job.startedAt } : {}),
    finishedAt: outcome.now,
    ...(outcome.exitCode !== undefined ? { exitCode: outcome.exitCode } : {}),
    state: outcome.state,
    ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}),
    ...(outcome.failure !== undefined ? { failure: outcome.failure } : {}),
  };
}

/** The job as it waits for its next attempt: nothing of the last attempt's placement left. */
function requeued(job: Job, history: AttemptRecord[], patch: TransitionPatch): Job {
  const { node: _n, startedAt: _s, scheduledAt: _sc, gpuDevices: _g, exitCode: _e, finishedAt: _f, ...rest } = job;
  return transition(rest, 'Pending', { ...patch, history });
}

/**
 * The one place that decides what an ended attempt means for the job: a
 * final state, or back to Pending for another attempt under the retry policy
 * (the job's own `retries` for its failures; the cluster's node-lost budget
 * when the node vanished). The attempt always goes into the history.
 */
export function endAttempt(job: Job, outcome: AttemptOutcome, policy: RetryPolicy = DEFAULT_RETRY_POLICY, random: () => number = Math.random): Job {
  if (outcome.state === 'Pending') {
    // An eviction is the cluster's doing, not the job's: no budget, no backoff. A cancel still wins.
    if (job.cancelRequested) outcome = { ...outcome, state: 'Cancelled' };
    else return evicted(job, outcome);
  }
  const history = [...(job.history ?? []), recordOf(job, outcome)];
  if (outcome.state === 'Failed' && !job.cancelRequested) {
    if (outcome.failure === 'node-lost') {
      const lost = (job.nodeLostCount ?? 0) + 1;
      if (lost <= policy.nodeLostRetries) {
        return requeued(job, history, {
          nodeLostCount: lost,
          reason: `NodeLost: ${outcome.reason ?? 'node left'}; requeued (node-lost retry ${lost} of ${policy.nodeLostRetries})`,
        });
      }
    } else {
      const failures = (job.failureCount ?? 0) + 1;
      if (failures <= (job.retries ?? 0)) {
        const delay = backoffDelay(failures, policy, random);
        return requeued(job, history, {
          failureCount: failures,
          retryAt: outcome.now + delay,
          reason: `${outcome.reason ?? 'failed'}; retry ${failures} of ${job.retries} in ${(delay / 1000).toFixed(1)}s`,
        });
      }
    }
  }
  const { retryAt: _r, ...rest } = job;
  return transition(rest, outcome.state, {
    finishedAt: outcome.now,
    history,
    ...(outcome.exitCode !== undefined ? { exitCode: outcome.exitCode } : {}),
    ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}),
  });
}

/** The job back in the queue after an eviction: the attempt recorded as `Pending`/`evicted`, counters and backoff untouched. */
function evicted(job: Job, outcome: AttemptOutcome): Job {
  const reason = outcome.reason ?? 'evicted';
  const record = recordOf(job, { ...outcome, state: 'Pending', failure: 'evicted', reason });
  const { retryAt: _r, ...rest } = job;
  return requeued(rest, [...(job.history ?? []), record], { reason });
}

/**
 * `titan retry`: a Failed or Cancelled job goes back to the queue with its
 * history kept and its retry budgets fresh. The attempt number keeps counting.
 * Any other job is refused (Conflict): a Succeeded one is done, and one that
 * has not ended is still the cluster's to run.
 */
export function resubmitted(job: Job): Job {
  if (job.state !== 'Failed' && job.state !== 'Cancelled') {
    throw new TitanError('Conflict', `job ${job.id} is ${job.state}; only Failed or Cancelled jobs can be retried`);
  }
  const {
    node: _n, startedAt: _s, scheduledAt: _sc, finishedAt: _f, exitCode: _e, gpuDevices: _g,
    retryAt: _r, cancelRequested: _c, failureCount: _fc, nodeLostCount: _nl, ...rest
  } = job;
  return transition(rest, 'Pending', { reason: `resubmitted after ${job.state} (titan retry)` });
}
