import { TitanError } from './errors.js';
import { isFinal, type Job } from './job.js';
import { transition } from './transitions.js';

/**
 * `titan cancel` (or a failed gang cancelling its other replicas, with
 * `why`): a Pending job is Cancelled at once; one a node holds is only
 * flagged, and ends Cancelled when its node reports the stop. An ended job
 * is refused (Conflict).
 */
export function cancelled(job: Job, now: number, why?: string): Job {
  if (isFinal(job.state)) throw new TitanError('Conflict', `job ${job.id} already ended (${job.state}); nothing to cancel`);
  if (job.state === 'Pending') return transition(job, 'Cancelled', { reason: why ?? 'cancelled before it was placed', finishedAt: now });
  return { ...job, cancelRequested: true, reason: 'cancel requested; stopping', ...(why ? { cancelReason: why } : {}) };
}
