import type { ICompare, IRequestOp } from 'etcd3';
import { unknownDependency } from '../model/dependency.js';
import { TitanError, invalidInput, isTitanError } from '../model/errors.js';
import { cancelled } from '../model/cancel.js';
import type { Job, JobState } from '../model/job.js';
import { resubmitted } from '../model/retry.js';
import { storageFullMessage, type StorageAlarm } from '../model/storage.js';
import { assertTransition } from '../model/transitions.js';
import { DEFAULT_QUEUE, queueOf, unknownQueue } from '../model/queue.js';
import { CorruptRecordError, encode, records } from './codec.js';
import { queueExists } from './queue-records.js';
import { MAX_CAS_RETRIES, StoreCore, type ReadResult, type TxnResult } from './store-core.js';
import { MAX_TXN_OPS, prefixEnd, txnCompare, txnOp } from './txn.js';
import type { Versioned } from './versioned.js';

/** Enough of a stored job to remove it, with its output, only if unchanged. */
export interface JobRef {
  id: string;
  modRevision: string;
  /** Every node that ran an attempt of it: its output lives under each (Keys.jobLogs). */
  nodes: readonly string[];
}

/** The nodes a job's attempts ran on, where their output is. */
export function nodesOfJob(job: Job): string[] {
  const nodes = new Set<string>();
  for (const h of job.history ?? []) if (h.node !== undefined) nodes.add(h.node);
  if (job.node !== undefined) nodes.add(job.node);
  return [...nodes];
}

/** Most jobs one creating transaction holds: a put each, and a compare each besides the batch's others. */
export const MAX_JOBS_PER_TXN = MAX_TXN_OPS / 2;

/** The jobs the given jobs wait for (`after`), once. */
function parentsOf(jobs: readonly Job[]): string[] {
  const ids = new Set<string>();
  for (const job of jobs) for (const dep of job.after ?? []) for (const id of dep.jobs) ids.add(id);
  return [...ids];
}

/**
 * Jobs in order, cut into transactions: at most MAX_JOBS_PER_TXN each, and
 * compares (the storage alarm, each queue named, each parent, each job) within
 * etcd's limit. Jobs of one submit share queue and parents, so those count once.
 */
export function creationBatches(jobs: readonly Job[]): { jobs: Job[]; queues: string[]; parents: string[] }[] {
  const batches: { jobs: Job[]; queues: string[]; parents: string[] }[] = [];
  let current: { jobs: Job[]; queues: Set<string>; parents: Set<string> } | undefined;
  const close = (): void => {
    if (current) batches.push({ jobs: current.jobs, queues: [...current.queues], parents: [...current.parents] });
    current = undefined;
  };
  for (const job of jobs) {
    const queue = queueOf(job);
    const parents = parentsOf([job]);
    if (current) {
      const queues = current.queues.size + (queue === DEFAULT_QUEUE || current.queues.has(queue) ? 0 : 1);
      const held = current.parents;
      const compares = 1 + queues + held.size + parents.filter((p) => !held.has(p)).length + current.jobs.length + 1;
      if (current.jobs.length >= MAX_JOBS_PER_TXN || compares > MAX_TXN_OPS) close();
    }
    current ??= { jobs: [], queues: new Set(), parents: new Set() };
    current.jobs.push(job);
    if (queue !== DEFAULT_QUEUE) current.queues.add(queue);
    for (const p of parents) current.parents.add(p);
  }
  close();
  return batches;
}

/** Jobs: created by submits, changed through the state table (pkg/model/transitions.ts), removed when retention says so. */
export abstract class JobRecords extends StoreCore {
  /**
   * Creates jobs in as few transactions as etcd's op limit allows; an id
   * that exists fails its batch. Each batch also requires the queues its jobs
   * name to exist (the default queue always does), and the jobs they wait for
   * (`after`), so a queue or a parent removed while jobs are submitted fails
   * the submission instead of leaving jobs that wait for nothing. An unknown
   * parent is InvalidInput; with several batches the parents are checked
   * before the first, so nothing is written. `atomic` (a gang's replicas)
   * requires all of them in one transaction: all are created or none.
   */
  async createJobs(jobs: readonly Job[], options: { atomic?: boolean } = {}): Promise<void> {
    const batches = creationBatches(jobs);
    if (options.atomic && batches.length > 1) {
      throw new TitanError('InvalidInput', `at most ${MAX_JOBS_PER_TXN} jobs can be created in one transaction; got ${jobs.length}`);
    }
    // The key each parent is required by: its own, or for an array (no record of its own) one of its tasks'.
    const parentKeys = batches.length > 1 ? await this.requireParents(parentsOf(jobs)) : new Map<string, string>();
    for (const [index, { jobs: batch, queues, parents }] of batches.entries()) {
      for (let tries = 1; ; tries++) {
        // Refused as a whole while the leader says storage is full: nothing of the batch is written.
        const { succeeded } = await this.txn(
          [
            txnCompare.absent(this.keys.storageAlarm()),
            ...queues.map((q) => queueExists(this.keys.queue(q))),
            ...parents.map((id) => txnCompare.exists(parentKeys.get(id) ?? this.keys.job(id))),
            ...batch.map((j) => txnCompare.absent(this.keys.job(j.id))),
          ],
          batch.map((j) => txnOp.put(this.keys.job(j.id), encode(j))),
        ).catch((err: unknown) => {
          // etcd's own NOSPACE alarm refuses the write before our key could say so.
          if (isTitanError(err, 'ResourceExhausted')) throw new TitanError('ResourceExhausted', storageFullMessage({ nospace: true }), { cause: err });
          throw err;
        });
        if (succeeded) break;
        await this.refuseIfStorageFull();
        for (const q of queues) if (!(await this.get(this.keys.queue(q), records.queue))) throw unknownQueue(q);
        const found = await this.requireParents(parents);
        // A parent first taken for a job is an array: once more, with its task's key.
        if (tries === 1 && parents.some((id) => found.get(id) !== (parentKeys.get(id) ?? this.keys.job(id)))) {
          for (const [id, key] of found) parentKeys.set(id, key);
          continue;
        }
        throw new TitanError('Conflict', `a job id in batch ${index} already exists`);
      }
    }
  }
  /**
   * The key that shows each of these jobs exists: its record's, or for an
   * array its last task's, the array being whole (every task there: one
   * partly written or partly removed cannot be waited for). Throws
   * InvalidInput (field `after`) naming the first that exists as neither.
   */
  private async requireParents(ids: readonly string[]): Promise<Map<string, string>> {
    const keys = new Map<string, string>();
    for (let i = 0; i < ids.length; i += MAX_TXN_OPS) {
      const chunk = ids.slice(i, i + MAX_TXN_OPS);
      const res = await this.call(() =>
        this.client.kv.txn({ compare: [], success: chunk.map((id) => ({ request_range: { key: Buffer.from(this.keys.job(id)), count_only: true } })) }),
      );
      for (const [k, id] of chunk.entries()) {
        keys.set(id, Number(res.responses[k]?.response_range?.count ?? 0) > 0 ? this.keys.job(id) : await this.requireWholeArray(id));
      }
    }
    return keys;
  }
  /** The key of an array's last task, once every task of it is there; else InvalidInput (field `after`). */
  private async requireWholeArray(arrayId: string): Promise<string> {
    const prefix = this.keys.arrayTasks(arrayId);
    const res = await this.call(() => this.client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), limit: 1, sort_order: 'Descend', sort_target: 'Key' }));
    const last = res.kvs[0];
    if (!last) throw unknownDependency(arrayId);
    const task = records.job.decode(last.value, last.key.toString(), last.mod_revision);
    const count = task.array?.count ?? 0;
    if (Number(res.count) !== count) {
      throw invalidInput('after', `array ${arrayId} has ${res.count} of its ${count} tasks: an array can be waited for only while all of its tasks are there`);
    }
    return last.key.toString();
  }
  /** Throws the "cluster storage full" refusal while the leader's storage alarm is set. */
  private async refuseIfStorageFull(): Promise<void> {
    let alarm: StorageAlarm | undefined;
    try {
      alarm = (await this.get(this.keys.storageAlarm(), records.storageAlarm))?.value;
      if (!alarm) return;
    } catch (err) {
      if (!(err instanceof CorruptRecordError)) throw err;
      alarm = undefined; // the refusal stands; only its figures are missing
    }
    throw new TitanError('ResourceExhausted', storageFullMessage(alarm));
  }
  getJob(jobId: string): Promise<Versioned<Job> | undefined> {
    return this.get(this.keys.job(jobId), records.job);
  }
  async requireJob(jobId: string): Promise<Versioned<Job>> {
    const job = await this.getJob(jobId);
    if (!job) throw new TitanError('NotFound', `no job ${jobId} (see titan list)`);
    return job;
  }
  listJobs(): Promise<ReadResult & { items: Versioned<Job>[] }> {
    return this.list(this.keys.collection('jobs'), records.job);
  }
  /**
   * Writes jobs only where they are unchanged since read, all or none.
   * Throws IllegalTransitionError, writing nothing, if a `next` takes its job
   * to a state the table forbids. `encoded`: `next` already encoded by the caller.
   */
  async updateJobsIfUnchanged(updates: readonly { job: Versioned<Job>; next: Job; encoded?: Buffer }[], guard: readonly ICompare[] = []): Promise<TxnResult> {
    for (const u of updates) assertTransition(u.job.value, u.next.state);
    return this.txn(
      [...guard, ...updates.map((u) => txnCompare.modRevision(u.job.key, u.job.modRevision))],
      updates.map((u) => txnOp.put(u.job.key, u.encoded ?? encode(u.next))),
    );
  }
  /**
   * The state of each job, MAX_TXN_OPS to a transaction, with the revision
   * it was read at: the job's own (modRevision), or for a job that does not
   * exist (state undefined) the read's. A record that does not decode is left
   * out: its state is not known.
   */
  async getJobStates(ids: readonly string[]): Promise<{ id: string; state: JobState | undefined; revision: string }[]> {
    const out: { id: string; state: JobState | undefined; revision: string }[] = [];
    for (let i = 0; i < ids.length; i += MAX_TXN_OPS) {
      const chunk = ids.slice(i, i + MAX_TXN_OPS);
      const res = await this.call(() => this.client.kv.txn({ compare: [], success: chunk.map((id) => txnOp.get(this.keys.job(id))) }));
      chunk.forEach((id, k) => {
        const kv = res.responses[k]?.response_range?.kvs[0];
        if (!kv) {
          out.push({ id, state: undefined, revision: res.header.revision });
          return;
        }
        try {
          out.push({ id, state: records.job.decode(kv.value, kv.key.toString(), kv.mod_revision).state, revision: kv.mod_revision });
        } catch (err) {
          if (!(err instanceof CorruptRecordError)) throw err;
        }
      });
    }
    return out;
  }
  /**
   * The state of each task of an array, with its modRevision, the array's
   * size and the revision the read saw; undefined when no task exists (none
   * was, or all were removed). Tasks that cannot be read are left out.
   */
  async getArrayTaskStates(arrayId: string): Promise<{ count: number; tasks: { id: string; state: JobState; revision: string }[]; revision: string } | undefined> {
    const tasks: { id: string; state: JobState; revision: string }[] = [];
    let count = 0;
    const { revision } = await this.scan(this.keys.arrayTasks(arrayId), records.job, (page) => {
      for (const { value, modRevision } of page) {
        if (value.array?.id !== arrayId) continue;
        tasks.push({ id: value.id, state: value.state, revision: modRevision });
        count = value.array.count;
      }
    });
    return tasks.length > 0 ? { count, tasks, revision } : undefined;
  }
  /**
   * Replaces a job record that could not be read (`corrupt`, as a reader
   * reported it) with `next`, only if it is still that version; also removes
   * the job's assignment, if one is given, so no worker runs or keeps the
   * attempt. False when the record changed since (it is looked at again).
   */
  async replaceCorruptJob(
    corrupt: CorruptRecordError,
    next: Job,
    options: { assignmentKey?: string; guard?: readonly ICompare[] } = {},
  ): Promise<boolean> {
    if (corrupt.modRevision === undefined || corrupt.key !== this.keys.job(next.id)) return false;
    const compare = [...(options.guard ?? []), txnCompare.modRevision(corrupt.key, corrupt.modRevision)];
    const success = [txnOp.put(corrupt.key, encode(next))];
    if (options.assignmentKey !== undefined) success.push(txnOp.del(options.assignmentKey));
    return (await this.txn(compare, success)).succeeded;
  }
  /**
   * Cancels a job: a pending one at once; one that a worker holds is flagged
   * on both the job and its assignment, and the worker stops it.
   */
  async cancelJob(jobId: string, graceMs: number, now = Date.now(), why?: string): Promise<Job> {
    for (let attempt = 0; attempt < MAX_CAS_RETRIES; attempt++) {
      const job = await this.requireJob(jobId);
      const next = cancelled(job.value, now, why); // refuses an ended job
      const compare = [txnCompare.modRevision(job.key, job.modRevision)];
      const success: IRequestOp[] = [];
      if (next.state !== 'Cancelled') {
        // A node holds it: the flag goes on its assignment too, and the node stops the run.
        const node = job.value.node ?? '';
        const assignment = await this.get(this.keys.assignment(node, jobId), records.assignment);
        if (!assignment) continue; // the worker is finishing it right now; re-read
        compare.push(txnCompare.modRevision(assignment.key, assignment.modRevision));
        success.push(txnOp.put(assignment.key, encode({ ...assignment.value, cancel: { requestedAt: now, graceMs } })));
      }
      success.push(txnOp.put(job.key, encode(next)));
      if ((await this.txn(compare, success)).succeeded) return next;
    }
    throw new TitanError('Conflict', `job ${jobId} kept changing; try the cancel again`);
  }
  /** `titan retry`: puts a Failed or Cancelled job back in the queue. */
  async retryJob(jobId: string): Promise<Job> {
    for (let attempt = 0; attempt < MAX_CAS_RETRIES; attempt++) {
      const job = await this.requireJob(jobId);
      const next = resubmitted(job.value); // refuses a job that is not Failed or Cancelled
      if ((await this.updateJobsIfUnchanged([{ job, next }])).succeeded) return next;
    }
    throw new TitanError('Conflict', `job ${jobId} kept changing; try again`);
  }
  /**
   * Removes ended jobs with their logs, each only if unchanged since read,
   * in transactions within etcd's op limit (one compare each, a delete for
   * the job and one per node its attempts ran on, plus the guard). Returns
   * how many were removed.
   */
  async removeJobs(jobs: readonly JobRef[], guard: readonly ICompare[] = []): Promise<number> {
    let removed = 0;
    for (let i = 0; i < jobs.length; ) {
      let ops = guard.length;
      let end = i;
      while (end < jobs.length && (end === i || ops + 2 + jobs[end].nodes.length <= MAX_TXN_OPS)) ops += 2 + jobs[end++].nodes.length;
      const batch = jobs.slice(i, end);
      i = end;
      const { succeeded } = await this.txn(
        [...guard, ...batch.map((j) => txnCompare.modRevision(this.keys.job(j.id), j.modRevision))],
        batch.flatMap((j) => [txnOp.del(this.keys.job(j.id)), ...j.nodes.map((node) => txnOp.delPrefix(this.keys.jobLogs(node, j.id)))]),
      );
      if (succeeded) removed += batch.length;
    }
    return removed;
  }
}
