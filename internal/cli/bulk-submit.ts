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
  const batchSize = Math.max(1, Math.min(DEFAULT_SUBMIT_BATCH, Math.floor(options.batchSize ?? DEFAULT_SUBMIT_BATCH)));
  const result = await submitInBatches(
    jobs,
    async (batch) => {
      await store.createJobs(batch);
      return batch.map((j) => j.id);
    },
    { batchSize, concurrency: options.concurrency ?? DEFAULT_SUBMIT_CONCURRENCY, ...(options.onProgress ? { onProgress: options.onProgress } : {}) },
  );
  const { batches, ...rest } = result;
  return { ...rest, transactions: batches };
}

/** Writes one batch; answers the ids of the jobs it created, in the batch's order. */
export type BatchWriter<T> = (batch: T[]) => Promise<readonly string[]>;

export interface BatchesResult {
  submitted: number;
  /** Batches written (etcd transactions, or API requests). */
  batches: number;
  seconds: number;
  jobsPerSec: number;
  /** Every id created, in the order of the items. */
  ids: string[];
}

/**
 * The one bulk loop of submitJobs and of the API client's `submit -n`:
 * fixed-size batches, at most `concurrency` in flight; on the first failure
 * no new batch starts, the ones in flight finish, and the error says how
 * many jobs made it.
 */
export async function submitInBatches<T>(
  items: readonly T[],
  write: BatchWriter<T>,
  options: { batchSize: number; concurrency: number; onProgress?: (submitted: number, total: number) => void },
): Promise<BatchesResult> {
  const concurrency = Math.max(1, Math.floor(options.concurrency));
  const batchSize = Math.max(1, Math.floor(options.batchSize));
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += batchSize) batches.push(items.slice(i, i + batchSize));

  const started = performance.now();
  const idsOf: (readonly string[])[] = new Array<readonly string[]>(batches.length);
  let next = 0;
  let submitted = 0;
  let written = 0;
  let failure: unknown;

  const lane = async (): Promise<void> => {
    while (failure === undefined && next < batches.length) {
      const index = next++;
      const batch = batches[index];
      try {
        idsOf[index] = await write(batch);
      } catch (err) {
        failure ??= err;
        return;
      }
      submitted += batch.length;
      written++;
      options.onProgress?.(submitted, items.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, batches.length) }, lane));

  if (failure !== undefined) {
    if (submitted === 0) throw failure;
    const message = failure instanceof Error ? failure.message : String(failure);
    const code = isTitanError(failure) ? failure.code : 'Internal';
    throw new TitanError(code, `${submitted} of ${items.length} jobs were submitted, then: ${message}`, { cause: failure });
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    submitted,
    batches: written,
    seconds,
    jobsPerSec: seconds > 0 ? submitted / seconds : submitted,
    ids: idsOf.flat(),
  };
}
