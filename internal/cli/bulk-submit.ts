import { TitanError, isTitanError } from '../../pkg/model/errors.js';
import type { Job } from '../../pkg/model/job.js';
import type { Store } from '../../pkg/store/store.js';
import { MAX_TXN_OPS } from '../../pkg/store/txn.js';

export interface SubmitJobsOptions {
  /** Transactions in flight at once (default 8). */
  concurrency?: number;
  /** Jobs per transaction (default: as many as etcd's txn op limit allows, 64). */
  batchSize?: number;
  /** Called after each committed batch with the running total. */
  onProgress?: (submitted: number, total: number) => void;
}

export interface SubmitJobsResult {
  submitted: number;
  transactions: number;
  /** Wall time of the whole submission. */
  seconds: number;
  jobsPerSec: number;
  ids: string[];
}

export const DEFAULT_SUBMIT_CONCURRENCY = 8;
export const DEFAULT_SUBMIT_BATCH = MAX_TXN_OPS / 2;

/**
 * Creates many jobs fast: fixed-size batches (one etcd transaction each),
 * with a bounded number of transactions in flight. Batches commit
 * independently; on the first failure no new batch starts, the ones in
 * flight finish, and the error says how many jobs made it.
 */
export async function submitJobs(
  store: Pick<Store, 'createJobs'>,
  jobs: readonly Job[],
  options: SubmitJobsOptions = {},
): Promise<SubmitJobsResult> {
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? DEFAULT_SUBMIT_CONCURRENCY));
  const batchSize = Math.max(1, Math.min(DEFAULT_SUBMIT_BATCH, Math.floor(options.batchSize ?? DEFAULT_SUBMIT_BATCH)));
  const batches: Job[][] = [];
  for (let i = 0; i < jobs.length; i += batchSize) batches.push(jobs.slice(i, i + batchSize));

  const started = performance.now();
  let next = 0;
  let submitted = 0;
  let transactions = 0;
  let failure: unknown;

  const lane = async (): Promise<void> => {
    while (failure === undefined && next < batches.length) {
      const batch = batches[next++];
      try {
        await store.createJobs(batch);
      } catch (err) {
        failure ??= err;
        return;
      }
      submitted += batch.length;
      transactions++;
      options.onProgress?.(submitted, jobs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, batches.length) }, lane));

  if (failure !== undefined) {
    if (submitted === 0) throw failure;
    const message = failure instanceof Error ? failure.message : String(failure);
    const code = isTitanError(failure) ? failure.code : 'Internal';
    throw new TitanError(code, `${submitted} of ${jobs.length} jobs were submitted, then: ${message}`, { cause: failure });
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    submitted,
    transactions,
    seconds,
    jobsPerSec: seconds > 0 ? submitted / seconds : submitted,
    ids: jobs.map((j) => j.id),
  };
}
