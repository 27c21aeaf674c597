import { arrayIdOfTaskId, formatIndexes, parseJobRef, type ArraySpec, type JobRef } from '../../pkg/model/array.js';
import { cancelled } from '../../pkg/model/cancel.js';
import { TitanError, invalidInput, isTitanError } from '../../pkg/model/errors.js';
import { JOB_ID_PATTERN } from '../../pkg/model/id.js';
import { isFinal, JOB_STATES, type Job, type JobState } from '../../pkg/model/job.js';
import { DEFAULT_QUEUE } from '../../pkg/model/queue.js';
import { resubmitted } from '../../pkg/model/retry.js';
import { Semaphore } from '../../pkg/concurrency/semaphore.js';
import { records } from '../../pkg/store/codec.js';
import type { Store } from '../../pkg/store/store.js';
import { MAX_TXN_OPS } from '../../pkg/store/txn.js';
import type { Versioned } from '../../pkg/store/versioned.js';
import { formatTimestamp, renderFields } from './format.js';

/**
 * Arrays as the CLI and the API address them (docs/arrays.md): `ID` is the
 * array when no job has that id but tasks do, `ID[7]` one task. An array has
 * no record of its own: everything here is read from its tasks.
 */

/** What `ID` or `ID[7]` turned out to be. */
export type Resolved = { kind: 'job'; ref: JobRef; job: Versioned<Job> } | { kind: 'array'; id: string; tasks: Versioned<Job>[] };

/** Whether an id could be an array's: a plain job id (not a task's). */
export function mayBeArrayId(id: string): boolean {
  return JOB_ID_PATTERN.test(id) && arrayIdOfTaskId(id) === undefined;
}

/** The tasks of an array in index order (their keys sort so); `limit`: stop after that many. */
export async function readArrayTasks(store: Store, arrayId: string, limit?: number): Promise<Versioned<Job>[]> {
  const found: Versioned<Job>[] = [];
  await store.scan(
    store.keys.arrayTasks(arrayId),
    records.job,
    (items) => {
      for (const item of items) if (item.value.array?.id === arrayId) found.push(item);
      return limit === undefined || found.length < limit;
    },
    limit !== undefined ? { pageSize: limit } : {},
  );
  return limit !== undefined ? found.slice(0, limit) : found;
}

export function notFound(text: string): TitanError {
  return new TitanError('NotFound', `no job ${text} (see titan list)`);
}

/** Reads what `text` addresses: a job (an array task included) or a whole array. NotFound when neither. */
export async function resolveJobRef(store: Store, text: string): Promise<Resolved> {
  const ref = parseJobRef(text);
  const job = await store.getJob(ref.id);
  if (job) return { kind: 'job', ref, job };
  if (!ref.task && mayBeArrayId(ref.id)) {
    const tasks = await readArrayTasks(store, ref.id);
    if (tasks.length > 0) return { kind: 'array', id: ref.id, tasks };
  }
  throw notFound(text);
}

/** The error for a verb that takes one job (logs) given an array. */
export function arrayNeedsIndex(arrayId: string, task: Pick<Job, 'array'> | undefined, verb: string): TitanError {
  const count = task?.array?.count;
  const first = task?.array?.index ?? 0;
  return invalidInput('id', `${arrayId} is an array${count !== undefined ? ` of ${count} tasks` : ''}: name one task, e.g. titan ${verb} ${arrayId}[${first}]`);
}

/**
 * Runs `read` on the job `text` names; when there is no such job but `text`
 * is an array id, fails asking for a task instead (exit 2). The common case,
 * a job that exists, costs no extra read.
 */
export async function withSingleJob<T>(store: Store, text: string, verb: string, read: (jobId: string) => Promise<T>): Promise<T> {
  const ref = parseJobRef(text);
  try {
    return await read(ref.id);
  } catch (err) {
    if (!isTitanError(err, 'NotFound')) throw err;
    if (!ref.task && mayBeArrayId(ref.id)) {
      const [first] = await readArrayTasks(store, ref.id, 1);
      if (first) throw arrayNeedsIndex(ref.id, first.value, verb);
    }
    throw ref.task ? notFound(text) : err;
  }
}

// ---- status ------------------------------------------------------------------

/** A task's line in `titan status ID[7]`: `<array> task 7 of 100 (at most 10 at once)`. */
export function describeArrayTask(array: ArraySpec): string {
  return `${array.id} task ${array.index} of ${array.count}${array.max !== undefined ? ` (at most ${array.max} at once)` : ''}; see titan status ${array.id}`;
}

/** `titan status <array id>` (--output json) and the API's `GET /v1/jobs/{array id}`. */
export interface ArrayStatusDocument {
  id: string;
  name: string;
  queue: string;
  createdAt: number;
  /** Tasks the array was submitted with. */
  count: number;
  /** `%max`, or null without a cap. */
  max: number | null;
  /** Tasks per state (every state present); they add up to `count` unless tasks were removed (retention). */
  tasks: Record<JobState, number>;
  /** Indexes of the Failed tasks, ascending. */
  failedIndexes: number[];
}

export function isArrayStatus(doc: object): doc is ArrayStatusDocument {
  return 'tasks' in doc && 'failedIndexes' in doc;
}

export function arrayStatusView(id: string, tasks: readonly Job[]): ArrayStatusDocument {
  const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
  const failedIndexes: number[] = [];
  for (const t of tasks) {
    counts[t.state]++;
    if (t.state === 'Failed' && t.array) failedIndexes.push(t.array.index);
  }
  const first = tasks[0];
  return {
    id,
    name: first?.name ?? '',
    queue: first?.queue ?? DEFAULT_QUEUE,
    createdAt: first?.createdAt ?? 0,
    count: first?.array?.count ?? tasks.length,
    max: first?.array?.max ?? null,
    tasks: counts,
    failedIndexes: failedIndexes.sort((a, b) => a - b),
  };
}

export function renderArrayStatus(doc: ArrayStatusDocument, now: number = Date.now()): string {
  const found = JOB_STATES.reduce((n, s) => n + doc.tasks[s], 0);
  const fields: [string, string][] = [
    ['Array', doc.id],
    ['Name', doc.name],
    ['Queue', doc.queue],
    ['Tasks', `${doc.count}${found !== doc.count ? ` (${found} still stored)` : ''}${doc.max !== null ? `, at most ${doc.max} at once` : ''}`],
  ];
  for (const state of JOB_STATES) fields.push([state, String(doc.tasks[state])]);
  fields.push(['Failed indexes', formatIndexes(doc.failedIndexes)], ['Created', formatTimestamp(doc.createdAt, now)]);
  return `${renderFields(fields)}Tasks are ${doc.id}[<index>]: titan status ${doc.id}[<index>], titan logs ${doc.id}[<index>]\n`;
}

/** `titan retry` of an array without --failed, or --failed on a single job: what to give instead. */
export function retryUsage(resolved: Resolved, failed: boolean): TitanError | undefined {
  if (resolved.kind === 'array' && !failed) {
    return invalidInput('failed', `${resolved.id} is an array: titan retry ${resolved.id} --failed requeues its Failed tasks, titan retry ${resolved.id}[<index>] one task`);
  }
  if (resolved.kind === 'job' && failed) return invalidInput('failed', '--failed goes with an array id (it requeues the Failed tasks of the array)');
  return undefined;
}

// ---- cancel and retry ----------------------------------------------------------

/** `titan cancel <array id>`: the tasks cancelled at once (pending) and those their workers now stop. */
export interface ArrayCancelOutcome {
  id: string;
  cancelled: number[];
  stopping: number[];
  graceMs: number;
}

/** `titan retry <array id> --failed`: the indexes put back in the queue. */
export interface ArrayRetryOutcome {
  id: string;
  retried: number[];
}

/** Writes in flight at once, for arrays of thousands of tasks (like submitJobs). */
const CONCURRENCY = 8;
/** Jobs per transaction: one compare and one put each. */
const PER_TXN = MAX_TXN_OPS / 2;

const indexOf = (job: Job): number => job.array?.index ?? -1;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Moves many tasks through the state table (`next`) in transactions of
 * PER_TXN, each comparing every task's revision; a batch that lost a race
 * is done one task at a time by `single` (which re-reads). Returns the
 * indexes changed.
 */
async function updateTasks(
  store: Store,
  tasks: readonly Versioned<Job>[],
  next: (job: Job) => Job,
  single: (job: Job) => Promise<Job | undefined>,
): Promise<{ changed: Job[] }> {
  const lanes = new Semaphore(CONCURRENCY);
  const changed: Job[] = [];
  await Promise.all(
    chunks(tasks, PER_TXN).map((batch) =>
      lanes.run(async () => {
        const updates = batch.map((job) => ({ job, next: next(job.value) }));
        if ((await store.updateJobsIfUnchanged(updates)).succeeded) {
          changed.push(...updates.map((u) => u.next));
          return;
        }
        for (const job of batch) {
          const done = await single(job.value);
          if (done) changed.push(done);
        }
      }),
    ),
  );
  return { changed };
}

/** Cancels every task of the array that has not ended: pending ones at once, held ones through their workers. */
export async function cancelArrayTasks(store: Store, arrayId: string, tasks: readonly Versioned<Job>[], graceMs: number, now = Date.now()): Promise<ArrayCancelOutcome> {
  const live = tasks.filter((t) => !isFinal(t.value.state));
  if (live.length === 0) throw new TitanError('Conflict', `array ${arrayId} already ended (all ${tasks.length} tasks); nothing to cancel`);
  const cancelOne = async (job: Job): Promise<Job | undefined> => {
    try {
      return await store.cancelJob(job.id, graceMs, now);
    } catch (err) {
      if (isTitanError(err, 'Conflict') || isTitanError(err, 'NotFound')) return undefined; // it ended meanwhile
      throw err;
    }
  };
  const pending = live.filter((t) => t.value.state === 'Pending');
  const held = live.filter((t) => t.value.state !== 'Pending');
  const { changed } = await updateTasks(store, pending, (job) => cancelled(job, now), cancelOne);
  const lanes = new Semaphore(CONCURRENCY);
  const stopped = await Promise.all(held.map((t) => (t.value.cancelRequested ? t.value : lanes.run(() => cancelOne(t.value)))));
  const all = [...changed, ...stopped.filter((j): j is Job => j !== undefined)];
  const sorted = (state: (s: JobState) => boolean): number[] => all.filter((j) => state(j.state)).map(indexOf).sort((a, b) => a - b);
  return { id: arrayId, cancelled: sorted((s) => s === 'Cancelled'), stopping: sorted((s) => s !== 'Cancelled'), graceMs };
}

/** Puts the array's Failed tasks back in the queue (history kept, retries reset), through the state table. */
export async function retryFailedTasks(store: Store, arrayId: string, tasks: readonly Versioned<Job>[]): Promise<ArrayRetryOutcome> {
  const failed = tasks.filter((t) => t.value.state === 'Failed');
  if (failed.length === 0) throw new TitanError('Conflict', `array ${arrayId} has no Failed tasks; nothing to retry`);
  const { changed } = await updateTasks(store, failed, resubmitted, async (job) => {
    const now = await store.getJob(job.id);
    if (now?.value.state !== 'Failed') return undefined; // retried or removed meanwhile
    try {
      return await store.retryJob(job.id);
    } catch (err) {
      if (isTitanError(err, 'Conflict')) return undefined;
      throw err;
    }
  });
  return { id: arrayId, retried: changed.map(indexOf).sort((a, b) => a - b) };
}

export function isArrayCancel(outcome: object): outcome is ArrayCancelOutcome {
  return 'cancelled' in outcome && 'stopping' in outcome;
}

export function isArrayRetry(outcome: object): outcome is ArrayRetryOutcome {
  return 'retried' in outcome;
}

export function describeArrayCancel(outcome: ArrayCancelOutcome): string {
  const grace = outcome.graceMs >= 1000 ? `${outcome.graceMs / 1000}s` : `${outcome.graceMs}ms`;
  const parts = [`array ${outcome.id}: ${outcome.cancelled.length} task${outcome.cancelled.length === 1 ? '' : 's'} cancelled`];
  if (outcome.stopping.length > 0) parts.push(`${outcome.stopping.length} stopping (cancel requested; the workers stop them, grace ${grace})`);
  return parts.join(', ');
}

export function describeArrayRetry(outcome: ArrayRetryOutcome): string {
  const n = outcome.retried.length;
  return `array ${outcome.id}: ${n} failed task${n === 1 ? ' is' : 's are'} Pending again (indexes ${formatIndexes(outcome.retried)})`;
}
