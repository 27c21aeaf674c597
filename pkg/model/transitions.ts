import { TitanError } from './errors.js';
import type { JobState } from './job.js';

/** The one table of legal state changes. A state may always stay itself (reason updates). */
const ALLOWED: Record<JobState, readonly JobState[]> = {
  Pending: ['Scheduled', 'Cancelled'],
  // Scheduled → Failed: the worker could not start it (image pull failed, no GPU runtime).
  // Scheduled/Running → Pending: requeued after the node was lost.
  Scheduled: ['Running', 'Failed', 'Cancelled', 'Pending', 'Succeeded'],
  Running: ['Succeeded', 'Failed', 'Cancelled', 'Pending'],
  Succeeded: [],
  Failed: [],
  Cancelled: [],
};

export function canTransition(from: JobState, to: JobState): boolean {
  return from === to || ALLOWED[from].includes(to);
}

export function assertTransition(jobId: string, from: JobState, to: JobState): void {
  if (!canTransition(from, to)) {
    throw new TitanError('Conflict', `job ${jobId} cannot go from ${from} to ${to}`);
  }
}
