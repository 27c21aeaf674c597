import { TitanError } from '../../pkg/model/index.js';

/**
 * Where one run of an attempt on this node is in its life (JobRun): a
 * worker-local lifecycle, not the job's state (the master owns that). A run
 * is in exactly one phase; the table below says which may follow which.
 */
export type RunPhase =
  /** Reading what this node reported of the attempt already, then claiming it (reporting it Running). */
  | 'claiming'
  /** Finding the run of an earlier worker process again: where its stored log ends, its container. */
  | 'recovering'
  /** The executor starts the run (a start slot, an image pull, the container or process). */
  | 'starting'
  /** An execution is followed: stops and the timeout reach it. */
  | 'running'
  /** The run is over or never ran: the rest of its log is stored, its end journaled, its leftovers removed. */
  | 'finishing'
  /** The attempt's end is being reported; the master deletes the assignment once it folded the report. */
  | 'reporting'
  /** The end is reported (by this run, or by an earlier worker process). */
  | 'reported'
  /** The assignment was taken from this node: nothing is recorded. */
  | 'not-ours'
  /** Nothing could be recorded (etcd was out of reach): a later run of the assignment tries again, from the journal. */
  | 'retry'
  /** The worker left and let the run go on without it: a later worker process re-attaches to it. */
  | 'detached';

const NEXT: Readonly<Record<RunPhase, readonly RunPhase[]>> = {
  // finishing: stopped before it started, or an earlier process journaled the end; reporting: the job itself does not read.
  claiming: ['recovering', 'starting', 'finishing', 'reporting', 'reported', 'not-ours', 'retry', 'detached'],
  recovering: ['running', 'finishing', 'retry', 'detached'],
  starting: ['running', 'finishing', 'detached'],
  running: ['finishing', 'detached'],
  finishing: ['reporting', 'not-ours', 'detached'],
  reporting: ['reported', 'not-ours', 'retry', 'detached'],
  reported: [],
  'not-ours': [],
  retry: [],
  detached: [],
};

export const RUN_PHASES = Object.keys(NEXT) as RunPhase[];

/** Nothing follows: the run is over for this process (reported, not ours, to be retried, or left to a later process). */
export function isFinal(phase: RunPhase): boolean {
  return NEXT[phase].length === 0;
}

/**
 * The phase after `from` when the run moves on to `to`. A detached run stays
 * detached: what was in flight when the worker let it go completes (a start,
 * a last report try) without the run being followed again. Any other change
 * the table does not allow is a programming error.
 */
export function nextPhase(from: RunPhase, to: RunPhase): RunPhase {
  if (from === 'detached') return from;
  if (!NEXT[from].includes(to)) throw new TitanError('Internal', `job run: no phase change from ${from} to ${to}`);
  return to;
}
