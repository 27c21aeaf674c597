import { JOB_ID_PATTERN } from './id.js';
import type { Job } from './job.js';
import { ZERO_RESOURCES } from './resources.js';

/** The reason a job whose stored record was unreadable ends with. */
export const CORRUPT_REASON = 'Corrupt';

/** Milliseconds of a job id's creation time (its first 9 base32 characters). */
function createdAtOf(id: string): number {
  const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
  let ms = 0;
  for (const c of id.slice(0, 9)) ms = ms * 32 + alphabet.indexOf(c);
  return ms;
}

/**
 * What replaces a job record that cannot be read: the job ends Failed with
 * reason `Corrupt: <why>`. Nothing of the old record is trusted, so the spec
 * is empty: the job is never run again (retry refuses nothing, but there is
 * nothing to run; the user resubmits). Undefined when the id itself is not a
 * job id (the record is then only reported, see titan doctor).
 *
 * Not a transition of the state table (pkg/model/transitions.ts): the old
 * state cannot be read, so there is nothing to check; like a submit, this
 * writes a new record, which from then on is bound by the table.
 */
export function corruptJobRecord(id: string, why: string, now: number): Job | undefined {
  if (!JOB_ID_PATTERN.test(id)) return undefined;
  return {
    id,
    name: '',
    kind: 'docker',
    command: [],
    env: {},
    resources: { ...ZERO_RESOURCES },
    priority: 0,
    labels: {},
    state: 'Failed',
    reason: `${CORRUPT_REASON}: the stored record could not be read (${why}); resubmit the job`,
    createdAt: createdAtOf(id),
    finishedAt: now,
    attempt: 0,
  };
}
