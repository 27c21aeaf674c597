import { TitanError } from './errors.js';
import type { Job, JobState } from './job.js';

/**
 * The one table of legal state changes, and the law: every change of a
 * job's state is made by `transition` (the model's builders: endAttempt,
 * resubmitted, foldReport, cancel) and checked again where the store writes
 * a job over the one it read (`assertTransition`). A state may always stay
 * itself: reason updates, the cancel flag, a report that changes nothing.
 *
 * Two writes are not transitions, as no previous state is known:
 * submitting creates a job Pending, and the quarantine of a corrupt record
 * (corruptJobRecord) replaces a record nobody can read with a Failed one.
 */
const ALLOWED: Readonly<Record<JobState, readonly JobState[]>> = {
  // Scheduled: the master placed it on a node. Cancelled: `titan cancel` before placement.
  Pending: ['Scheduled', 'Cancelled'],
  // Running: the node reported the start. Succeeded: start and end came in one report.
  // Failed: it could not start (image pull, spawn) or its node-lost budget is spent.
  // Cancelled: cancelled before it started. Pending: requeued (node lost, start deadline,
  // evicted, or a failure with retries left).
  Scheduled: ['Running', 'Succeeded', 'Failed', 'Cancelled', 'Pending'],
  // How the run ended; Pending: requeued, as above.
  Running: ['Succeeded', 'Failed', 'Cancelled', 'Pending'],
  // Final. `titan retry` takes Failed and Cancelled jobs back to the queue, never Succeeded ones.
  Succeeded: [],
  Failed: ['Pending'],
  Cancelled: ['Pending'],
};

/** A state change the table forbids: a writer raced another, or a bug. */
export class IllegalTransitionError extends TitanError {
  readonly jobId: string;
  readonly from: JobState;
  readonly to: JobState;

  constructor(jobId: string, from: JobState, to: JobState) {
    super('Conflict', `job ${jobId} cannot go from ${from} to ${to}; read the job again (titan status ${jobId})`);
    this.name = 'IllegalTransitionError';
    this.jobId = jobId;
    this.from = from;
    this.to = to;
  }
}

export function canTransition(from: JobState, to: JobState): boolean {
  return from === to || ALLOWED[from].includes(to);
}

/** Throws IllegalTransitionError unless the table lets `job` go to `to`. */
export function assertTransition(job: Pick<Job, 'id' | 'state'>, to: JobState): void {
  if (!canTransition(job.state, to)) throw new IllegalTransitionError(job.id, job.state, to);
}

/** What a transition may set besides the state: never the id or the state itself. */
export type TransitionPatch = Partial<Omit<Job, 'id' | 'state'>>;

/**
 * The job in state `to` with `patch` applied: the one way a job's state
 * changes. Fields to drop are dropped from `job` before the call.
 */
export function transition(job: Job, to: JobState, patch: TransitionPatch = {}): Job {
  assertTransition(job, to);
  return { ...job, ...patch, state: to };
}
