import { GRPCResourceExhastedError, type Etcd3, type ICompare, type IKeyValue, type IRequestOp } from 'etcd3';
import type { Assignment } from '../model/assignment.js';
import { TitanError, invalidInput, isTitanError } from '../model/errors.js';
import { cancelled, isFinal, type Job } from '../model/job.js';
import { resubmitted } from '../model/retry.js';
import { assertTransition } from '../model/transitions.js';
import type { LogChunk } from '../model/logs.js';
import type { NodeInfo } from '../model/node.js';
import type { ApiToken } from '../model/token.js';
import type { RunReport } from '../model/run-report.js';
import { storageFullMessage, type StorageAlarm } from '../model/storage.js';
import { DEFAULT_QUEUE, childQueues, implicitDefaultQueue, queueOf, unknownQueue, validateQueueTree, type Queue } from '../model/queue.js';
import { connectEtcd, normalizeEndpoints, type ConnectOptions } from './client.js';
import { CorruptRecordError, encode, records, type LeaderInfo, type RecordCodec } from './codec.js';
import { isCompactedError, storeError } from './errors.js';
import { Keys } from './keys.js';
import { MAX_TXN_OPS, prefixEnd, txnCompare, txnOp } from './txn.js';
import { toVersioned, type Versioned } from './versioned.js';

export interface StoreOptions extends ConnectOptions {
  /** Key prefix; lets several clusters (or tests) share one etcd. */
  prefix?: string;
}

/** One placement: the job becomes Scheduled on a node, and the node gets the assignment. */
export interface Placement {
  job: Versioned<Job>;
  scheduled: Job;
  /**
   * The assignment without its copy of the job: commitPlacements stores it
   * with `job: scheduled` (Assignment.job), encoded once for both keys.
   */
  assignment: Omit<Assignment, 'job'>;
  /** The node registration the scheduler saw; a re-registered or departed node fails the commit. */
  nodeCreateRevision: string;
}

/** Whether a transaction's compares held; revision is the store's revision after it. */
export interface TxnResult {
  succeeded: boolean;
  revision: string;
}

export interface ScanOptions {
  /**
   * Most keys per read (default 500). Reads are also sized by bytes
   * (PAGE_BYTES), so pages of large values hold fewer keys.
   */
  pageSize?: number;
  /** Newest (last key) first. */
  descending?: boolean;
  /** Start here instead of at the prefix (ascending scans). */
  fromKey?: string;
}

export type { LeaderInfo };

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

/**
 * The job as the placement wrote it (Assignment.job, `Scheduled`, this
 * attempt): all a node knows of the job it runs, since nodes cannot read job
 * records. Throws CorruptRecordError for an assignment without a readable copy.
 */
export function placedJob(assignment: Versioned<Assignment>): Job {
  const job = assignment.value.job;
  if (!job) throw new CorruptRecordError('assignment', assignment.key, '/job: missing (the job the node is to run)', assignment.modRevision);
  return records.job.decode(job, assignment.key, assignment.modRevision);
}

/** What Store.foldReport writes: the job's next state (if any), and whether the attempt is over (assignment and report go). */
export interface ReportFold {
  report: Versioned<RunReport>;
  /** The job as read; its mod revision is compared. Undefined: the job is gone (the report just goes). */
  job?: Versioned<Job>;
  next?: Job;
  /** The attempt's assignment, compared by create revision and deleted when `release`. */
  assignment?: Pick<Versioned<Assignment>, 'key' | 'createRevision'>;
  release: boolean;
}

/** One running attempt the scheduler wants back (see Store.evictJobs). */
export interface EvictionRequest {
  nodeId: string;
  jobId: string;
  /** Recorded in the job's history: `Reclaimed by queue X`, `Preempted by job Y`. */
  reason: string;
  /** The attempt the plan saw; a different one under the same key (re-placed meanwhile) is left alone. */
  attempt?: number;
}

/** What Store.evictJobs did. */
export interface EvictResult {
  /** False when the guard failed (no longer the leader) or the assignments kept changing: nothing was written. */
  succeeded: boolean;
  revision: string;
  /** Job ids whose assignment now carries `evict`. */
  evicted: string[];
  /** Job ids left alone: the attempt already ended (its own outcome stands), or is already being cancelled or evicted. */
  skipped: string[];
}

/** What one queue write does, and what must still hold for it (see Store.writeQueues). */
interface QueueWrite {
  put?: Queue;
  /** The put creates this queue: it must not exist. */
  absent?: string;
  /** The put replaces this stored version. */
  unchanged?: Versioned<Queue>;
  del?: Versioned<Queue>;
}

/** An assignment read inside another operation: a corrupt one counts as gone (it is quarantined where it is listed). */
function readableAssignment(kv: IKeyValue): Versioned<Assignment> | undefined {
  try {
    return toVersioned(kv, records.assignment);
  } catch (err) {
    if (err instanceof CorruptRecordError) return undefined;
    throw err;
  }
}

/** Compare that holds while a key exists (txnCompare.absent's opposite). */
function queueExists(key: string): ICompare {
  return { key: Buffer.from(key), target: 'Create', result: 'Greater', create_revision: 0 };
}

/** How often an optimistic read-modify-write is retried before giving up. */
const MAX_CAS_RETRIES = 50;

/** What a paged read skipped as corrupt (see CorruptRecordError), with the revision it read at. */
export interface ReadResult {
  revision: string;
  /** Records that did not decode, in key order (at most MAX_CORRUPT_KEPT; `corruptCount` counts all). */
  corrupt: CorruptRecordError[];
  corruptCount: number;
}

const MAX_CORRUPT_KEPT = 100;

/**
 * Bytes a paged read aims at per reply: gRPC refuses replies over 4 MiB, and
 * one reply of many large records (job specs up to 64 KiB and more) would be
 * over it. The next page's key count follows the sizes seen so far.
 */
export const PAGE_BYTES = 1024 * 1024;

/** Keys of a first page: even at the largest records Titan writes (job specs are capped at 64 KiB) it stays far below the reply limit. */
const FIRST_PAGE_KEYS = 16;

/** Keys for the next page: as many as fit PAGE_BYTES at the sizes of this one, at most `maxKeys`. */
export function nextPageLimit(kvs: readonly IKeyValue[], maxKeys: number): number {
  if (kvs.length === 0) return maxKeys;
  let bytes = 0;
  for (const kv of kvs) bytes += kv.key.length + kv.value.length;
  return Math.max(1, Math.min(maxKeys, Math.floor((PAGE_BYTES * kvs.length) / Math.max(1, bytes))));
}

/** A reply over gRPC's message limit (RESOURCE_EXHAUSTED on a read), as thrown or as wrapped by Store.call. */
function tooLarge(err: unknown): boolean {
  return err instanceof GRPCResourceExhastedError || (err instanceof Error && err.cause instanceof GRPCResourceExhastedError);
}

/** Tries of a paged list whose revision a compaction overtook. */
const LIST_ATTEMPTS = 3;
/**
 * Tries of an eviction transaction: few, because a failed guard (a deposed
 * leader) fails every try, and the next scheduling pass plans again anyway.
 */
const EVICT_TRIES = 3;
/**
 * Bytes of job records one placement transaction carries at most (each
 * placement writes the job twice: its key, and its copy in the assignment).
 * etcd takes requests up to 1.5 MiB (--max-request-bytes); the committer cuts
 * batches here, so only a gang larger than this together cannot be placed.
 */
export const MAX_PLACEMENT_TXN_BYTES = 1024 * 1024;

/** Report folds per transaction: three compares each, plus the leadership guard, within etcd's 128. */
export const FOLDS_PER_TXN = Math.floor((MAX_TXN_OPS - 1) / 3);

/**
 * The typed face of etcd for every Titan component. It owns the key layout
 * (through Keys) and the codec, and groups writes that must be atomic into
 * single transactions.
 */
export class Store {
  readonly client: Etcd3;
  readonly keys: Keys;
  readonly endpoints: string[];
  private readonly heldRevisions = new Map<symbol, bigint>();

  constructor(options: StoreOptions) {
    this.endpoints = normalizeEndpoints(options.endpoints, options.tls !== undefined);
    if (this.endpoints.length === 0) throw new TitanError('InvalidInput', 'endpoints: at least one etcd endpoint is needed');
    this.client = connectEtcd({ ...options, endpoints: this.endpoints });
    this.keys = new Keys(options.prefix);
  }

  close(): void {
    this.client.close();
  }

  /** Runs an etcd call, turning transport failures into actionable errors. */
  async call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw storeError(err, this.endpoints);
    }
  }

  /**
   * One key. `serializable` reads the local member without a quorum round:
   * cheaper, possibly stale, so only for reads a compare-and-swap re-checks.
   */
  async get<T>(key: string, codec: RecordCodec<T>, options: { serializable?: boolean } = {}): Promise<Versioned<T> | undefined> {
    const res = await this.call(() => this.client.kv.range({ key: Buffer.from(key), serializable: options.serializable ?? false }));
    return res.kvs.length > 0 ? toVersioned(res.kvs[0], codec) : undefined;
  }

  /**
   * Everything under a prefix, with the revision the read saw (watch from
   * revision + 1). A read whose revision is compacted away between its
   * pages starts over, a few times. Corrupt records are left out and
   * reported in `corrupt`.
   */
  async list<T>(prefix: string, codec: RecordCodec<T>, options: ScanOptions = {}): Promise<ReadResult & { items: Versioned<T>[] }> {
    for (let attempt = 1; ; attempt++) {
      const items: Versioned<T>[] = [];
      try {
        const result = await this.scan(prefix, codec, (page) => void items.push(...page), options);
        return { ...result, items };
      } catch (err) {
        if (attempt >= LIST_ATTEMPTS || !isCompactedError(err)) throw err;
      }
    }
  }

  /**
   * Marks a read of several pages at `revision` as in progress, until the
   * returned function is called: oldestHeldRevision tells a compactor in this
   * process not to compact past it.
   */
  holdRevision(revision: string): () => void {
    const id = Symbol(revision);
    this.heldRevisions.set(id, BigInt(revision));
    return () => void this.heldRevisions.delete(id);
  }

  oldestHeldRevision(): bigint | undefined {
    let oldest: bigint | undefined;
    for (const r of this.heldRevisions.values()) if (oldest === undefined || r < oldest) oldest = r;
    return oldest;
  }

  /**
   * Everything under a prefix, read in pages all at the revision of the first
   * page: for collections too large for one gRPC message (4 MiB by default,
   * about 20k jobs). `onPage` returns false to stop early; `descending` walks
   * from the last key (newest job first, as job ids sort by creation time).
   */
  async scan<T>(
    prefix: string,
    codec: RecordCodec<T>,
    onPage: (items: Versioned<T>[]) => boolean | void,
    options: ScanOptions = {},
  ): Promise<ReadResult> {
    const corrupt: CorruptRecordError[] = [];
    let corruptCount = 0;
    const { revision } = await this.scanKeyValues(
      prefix,
      (kvs) => {
        const page: Versioned<T>[] = [];
        for (const kv of kvs) {
          try {
            page.push(toVersioned(kv, codec));
          } catch (err) {
            if (!(err instanceof CorruptRecordError)) throw err;
            if (corruptCount++ < MAX_CORRUPT_KEPT) corrupt.push(err);
          }
        }
        return onPage(page);
      },
      options,
    );
    return { revision, corrupt, corruptCount };
  }

  /** scan, with the raw key-values: for callers that decode values their own way. */
  async scanKeyValues(prefix: string, onPage: (kvs: IKeyValue[]) => boolean | void, options: ScanOptions = {}): Promise<{ revision: string }> {
    const maxKeys = options.pageSize ?? 500;
    // Sizes are unknown until the first page: it stays small, the next ones follow what it held.
    let limit = Math.min(maxKeys, FIRST_PAGE_KEYS);
    let start = Buffer.from(options.fromKey ?? prefix);
    let end = prefixEnd(prefix);
    let revision: string | undefined;
    let release: (() => void) | undefined;
    try {
      for (;;) {
        const range = {
          key: start,
          range_end: end,
          limit,
          ...(revision !== undefined ? { revision } : {}),
          ...(options.descending ? { sort_order: 'Descend' as const, sort_target: 'Key' as const } : {}),
        };
        let res;
        try {
          res = await this.call(() => this.client.kv.range(range));
        } catch (err) {
          // A reply over gRPC's limit: the same page again with fewer keys.
          if (limit > 1 && tooLarge(err)) {
            limit = Math.max(1, Math.floor(limit / 4));
            continue;
          }
          throw err;
        }
        revision ??= res.header.revision;
        limit = nextPageLimit(res.kvs, maxKeys);
        if (onPage(res.kvs) === false || !res.more || res.kvs.length === 0) return { revision };
        release ??= this.holdRevision(revision);
        const last = res.kvs[res.kvs.length - 1].key;
        if (options.descending) end = last;
        else start = Buffer.concat([last, Buffer.from([0])]);
      }
    } finally {
      release?.();
    }
  }

  /** A raw transaction; true when the compares held and the writes happened. */
  async txn(compare: ICompare[], success: IRequestOp[]): Promise<TxnResult> {
    const res = await this.call(() => this.client.kv.txn({ compare, success }));
    return { succeeded: res.succeeded, revision: res.header.revision };
  }

  // ---- jobs ----------------------------------------------------------------

  /**
   * Creates jobs in as few transactions as the txn size limit allows; an id
   * that exists fails its batch. Each batch also requires the queues its jobs
   * name to exist (the default queue always does), so a queue deleted while
   * jobs are submitted to it fails the submission instead of orphaning jobs.
   * `atomic` (a gang's replicas) requires all of them in one transaction:
   * all are created or none.
   */
  async createJobs(jobs: readonly Job[], options: { atomic?: boolean } = {}): Promise<void> {
    const perTxn = MAX_TXN_OPS / 2;
    if (options.atomic && jobs.length > perTxn) {
      throw new TitanError('InvalidInput', `at most ${perTxn} jobs can be created in one transaction; got ${jobs.length}`);
    }
    for (let i = 0; i < jobs.length; i += perTxn) {
      const batch = jobs.slice(i, i + perTxn);
      // A batch names few distinct queues (one, from the CLI): well within the compare limit.
      const queues = [...new Set(batch.map(queueOf))].filter((q) => q !== DEFAULT_QUEUE);
      // Refused as a whole while the leader says storage is full: nothing of the batch is written.
      const { succeeded } = await this.txn(
        [
          txnCompare.absent(this.keys.storageAlarm()),
          ...queues.map((q) => queueExists(this.keys.queue(q))),
          ...batch.map((j) => txnCompare.absent(this.keys.job(j.id))),
        ],
        batch.map((j) => txnOp.put(this.keys.job(j.id), encode(j))),
      ).catch((err: unknown) => {
        // etcd's own NOSPACE alarm refuses the write before our key could say so.
        if (isTitanError(err, 'ResourceExhausted')) throw new TitanError('ResourceExhausted', storageFullMessage({ nospace: true }), { cause: err });
        throw err;
      });
      if (succeeded) continue;
      await this.refuseIfStorageFull();
      for (const q of queues) if (!(await this.getQueue(q))) throw unknownQueue(q);
      throw new TitanError('Conflict', `a job id in batch ${i / perTxn} already exists`);
    }
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
   * to a state the table forbids.
   */
  async updateJobsIfUnchanged(updates: readonly { job: Versioned<Job>; next: Job }[]): Promise<TxnResult> {
    for (const u of updates) assertTransition(u.job.value, u.next.state);
    return this.txn(
      updates.map((u) => txnCompare.modRevision(u.job.key, u.job.modRevision)),
      updates.map((u) => txnOp.put(u.job.key, encode(u.next))),
    );
  }

  /**
   * Commits placements atomically: each job must be unchanged since the
   * scheduler read it and each node must still be the registration it saw.
   * `guard` adds compares that fence the whole batch (leadership). Each
   * assignment carries the Scheduled job as `job`, the very bytes of the job
   * key's value (encoded once): nodes read jobs nowhere else.
   */
  commitPlacements(placements: readonly Placement[], guard: readonly ICompare[] = []): Promise<TxnResult> {
    const compare: ICompare[] = [...guard];
    const success: IRequestOp[] = [];
    for (const p of placements) {
      compare.push(txnCompare.modRevision(p.job.key, p.job.modRevision));
      compare.push(txnCompare.createRevision(this.keys.node(p.assignment.nodeId), p.nodeCreateRevision));
      const job = encode(p.scheduled);
      success.push(txnOp.put(p.job.key, job));
      success.push(txnOp.put(this.keys.assignment(p.assignment.nodeId, p.assignment.jobId), encode({ ...p.assignment, job })));
    }
    return this.txn(compare, success);
  }

  // ---- node reports ------------------------------------------------------

  /**
   * A node's report on an attempt it holds (its own key), fenced by the
   * assignment: a node whose assignment was taken away writes nothing.
   * False when fenced.
   */
  async putReport(assignment: Pick<Versioned<Assignment>, 'key' | 'createRevision' | 'value'>, report: RunReport): Promise<boolean> {
    const { nodeId, jobId } = assignment.value;
    const { succeeded } = await this.txn(
      [txnCompare.createRevision(assignment.key, assignment.createRevision)],
      [txnOp.put(this.keys.report(nodeId, jobId), encode(report))],
    );
    return succeeded;
  }

  /**
   * The claim: a node's first report on an attempt (Running, or Ended when
   * it was stopped before it started), only if the assignment is exactly as
   * the node saw it. A cancel or eviction flagged on the assignment since
   * changes it: the node gets the new version back (`changed`) and looks
   * again, so a run cancelled before its claim never starts.
   */
  async claimRun(
    assignment: Pick<Versioned<Assignment>, 'key' | 'createRevision' | 'modRevision' | 'value'>,
    report: RunReport,
  ): Promise<{ outcome: 'claimed' | 'fenced' } | { outcome: 'changed'; assignment: Versioned<Assignment> }> {
    const { nodeId, jobId } = assignment.value;
    const res = await this.call(() =>
      this.client.kv.txn({
        compare: [txnCompare.modRevision(assignment.key, assignment.modRevision)],
        success: [txnOp.put(this.keys.report(nodeId, jobId), encode(report))],
        failure: [txnOp.get(assignment.key)],
      }),
    );
    if (res.succeeded) return { outcome: 'claimed' };
    const kv = res.responses[0]?.response_range?.kvs[0];
    const current = kv ? readableAssignment(kv) : undefined;
    return current && current.createRevision === assignment.createRevision ? { outcome: 'changed', assignment: current } : { outcome: 'fenced' };
  }

  getReport(nodeId: string, jobId: string): Promise<Versioned<RunReport> | undefined> {
    return this.get(this.keys.report(nodeId, jobId), records.report);
  }

  /**
   * The master's half of a report: the job's next state, and once the
   * attempt is over its assignment and the report, in one transaction that
   * holds only while the job, the assignment and the report are as read.
   * `guard` fences it by the leader's term. False: something changed (read
   * again and fold again).
   */
  foldReport(fold: ReportFold, guard: readonly ICompare[] = []): Promise<TxnResult> {
    return this.foldReports([fold], guard);
  }

  /** Several folds in one transaction, all or none (at most FOLDS_PER_TXN). */
  foldReports(folds: readonly ReportFold[], guard: readonly ICompare[] = []): Promise<TxnResult> {
    const compare: ICompare[] = [...guard];
    const success: IRequestOp[] = [];
    for (const fold of folds) {
      compare.push(txnCompare.modRevision(fold.report.key, fold.report.modRevision));
      if (fold.job) {
        compare.push(txnCompare.modRevision(fold.job.key, fold.job.modRevision));
        if (fold.next) success.push(txnOp.put(fold.job.key, encode(fold.next)));
      }
      if (fold.assignment) {
        compare.push(txnCompare.createRevision(fold.assignment.key, fold.assignment.createRevision));
        if (fold.release) success.push(txnOp.del(fold.assignment.key));
      }
      if (fold.release || !fold.assignment) success.push(txnOp.del(fold.report.key));
    }
    return this.txn(compare, success);
  }

  /**
   * Jobs and their assignments on nodes, read in one round trip at one
   * revision (at most FOLDS_PER_TXN): what folding nodes' reports starts
   * from. A job record that does not decode comes back as `corruptJob`.
   */
  async getJobsAndAssignments(
    attempts: readonly { nodeId: string; jobId: string }[],
  ): Promise<{ job?: Versioned<Job>; corruptJob?: CorruptRecordError; assignment?: Versioned<Assignment> }[]> {
    const res = await this.call(() =>
      this.client.kv.txn({
        compare: [],
        success: attempts.flatMap(({ nodeId, jobId }) => [txnOp.get(this.keys.job(jobId)), txnOp.get(this.keys.assignment(nodeId, jobId))]),
      }),
    );
    return attempts.map((_, i) => {
      const [jobKv, assignmentKv] = [res.responses[2 * i]?.response_range?.kvs[0], res.responses[2 * i + 1]?.response_range?.kvs[0]];
      let job: Versioned<Job> | undefined;
      let corruptJob: CorruptRecordError | undefined;
      try {
        job = jobKv ? toVersioned(jobKv, records.job) : undefined;
      } catch (err) {
        if (!(err instanceof CorruptRecordError)) throw err;
        corruptJob = err;
      }
      const assignment = assignmentKv ? readableAssignment(assignmentKv) : undefined;
      return { ...(job ? { job } : {}), ...(corruptJob ? { corruptJob } : {}), ...(assignment ? { assignment } : {}) };
    });
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
        const assignment = await this.getAssignment(node, jobId);
        if (!assignment) continue; // the worker is finishing it right now; re-read
        compare.push(txnCompare.modRevision(assignment.key, assignment.modRevision));
        success.push(txnOp.put(assignment.key, encode({ ...assignment.value, cancel: { requestedAt: now, graceMs } })));
      }
      success.push(txnOp.put(job.key, encode(next)));
      if ((await this.txn(compare, success)).succeeded) return next;
    }
    throw new TitanError('Conflict', `job ${jobId} kept changing; try the cancel again`);
  }

  /**
   * Asks workers to give running attempts back (reclaim, preemption): sets
   * `evict` on their assignments, all in one transaction guarded by `guard`
   * (the leader's term) and by each assignment's mod revision, so an attempt
   * that ended meanwhile (assignment gone: its own outcome stands) or changed
   * (a cancel) is never touched. Assignments already gone, already cancelled
   * or evicted, or of another attempt are skipped. A transaction lost to a
   * concurrent change re-reads and tries again; `succeeded: false` means
   * nothing was written (leadership lost, or the assignments kept changing).
   * The worker then stops each run with `graceMs` (SIGTERM, grace, SIGKILL)
   * and writes the job back to Pending (failure `evicted`).
   */
  async evictJobs(
    evictions: readonly EvictionRequest[],
    graceMs: number,
    guard: readonly ICompare[] = [],
    now = Date.now(),
  ): Promise<EvictResult> {
    const perTxn = MAX_TXN_OPS - guard.length;
    if (evictions.length > perTxn) {
      throw invalidInput('evictions', `at most ${perTxn} evictions fit one transaction, got ${evictions.length}`);
    }
    const keys = evictions.map((e) => this.keys.assignment(e.nodeId, e.jobId));
    let revision = '0';
    for (let attempt = 0; attempt < EVICT_TRIES; attempt++) {
      const read = await this.call(() => this.client.kv.txn({ compare: [], success: keys.map((k) => txnOp.get(k)) }));
      const compare: ICompare[] = [...guard];
      const success: IRequestOp[] = [];
      const evicted: string[] = [];
      const skipped: string[] = [];
      evictions.forEach((e, i) => {
        const kv = read.responses[i]?.response_range?.kvs[0];
        const held = kv ? readableAssignment(kv) : undefined;
        if (!held || held.value.cancel || held.value.evict || (e.attempt !== undefined && held.value.attempt !== e.attempt)) {
          skipped.push(e.jobId);
          return;
        }
        compare.push(txnCompare.modRevision(held.key, held.modRevision));
        success.push(txnOp.put(held.key, encode({ ...held.value, evict: { requestedAt: now, graceMs, reason: e.reason } })));
        evicted.push(e.jobId);
      });
      // With nothing left to flag this still checks the guard: a deposed leader learns it here.
      const res = await this.txn(compare, success);
      revision = res.revision;
      if (res.succeeded) return { succeeded: true, revision, evicted, skipped };
    }
    return { succeeded: false, revision, evicted: [], skipped: [] };
  }

  /**
   * Ends an attempt from outside the worker (its node was lost): the job's
   * next state and the removal of the assignment and of whatever the node
   * reported of it, in one transaction, only if neither changed since read.
   * Throws IllegalTransitionError, writing nothing, if `next` takes the job to
   * a state the table forbids.
   */
  async endAssignment(assignment: Versioned<Assignment>, job: Versioned<Job>, next: Job, guard: readonly ICompare[] = []): Promise<TxnResult> {
    assertTransition(job.value, next.state);
    return this.txn(
      [
        ...guard,
        txnCompare.createRevision(assignment.key, assignment.createRevision),
        txnCompare.modRevision(job.key, job.modRevision),
      ],
      [txnOp.put(job.key, encode(next)), txnOp.del(assignment.key), txnOp.del(this.keys.report(assignment.value.nodeId, assignment.value.jobId))],
    );
  }

  // ---- retention -------------------------------------------------------------

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

  /** etcd's current revision: a linearizable read that counts one key. */
  async currentRevision(): Promise<string> {
    const res = await this.call(() => this.client.kv.range({ key: Buffer.from(this.keys.leader()), count_only: true }));
    return res.header.revision;
  }

  /** Drops etcd's history before a revision (watchers further behind re-list). */
  async compact(revision: string): Promise<void> {
    await this.call(() => this.client.kv.compact({ revision, physical: false }));
  }

  // ---- leadership ------------------------------------------------------------

  /** Takes the leader key under a lease if nobody holds it; the key's create revision identifies the term. */
  async campaign<T>(holder: T, leaseId: string): Promise<{ won: boolean; term: string }> {
    const key = this.keys.leader();
    const put = txnOp.put(key, encode(holder), leaseId);
    for (let attempt = 0; ; attempt++) {
      const res = await this.call(() => this.client.kv.txn({ compare: [txnCompare.absent(key)], success: [put], failure: [txnOp.get(key)] }));
      if (res.succeeded) return { won: true, term: res.header.revision };
      const held = res.responses[0]?.response_range?.kvs[0];
      if (!held || held.lease !== '0' || attempt > 0) return { won: false, term: held?.create_revision ?? '0' };
      // Every master writes the key under its lease: one without is no leader's (written around Titan) and would
      // block every campaign forever. It goes, only if unchanged, and the campaign runs again.
      await this.txn([txnCompare.modRevision(key, held.mod_revision)], [txnOp.del(key)]);
    }
  }

  /**
   * The current leadership term (the leader key's create revision), or
   * undefined when no master leads. The holder's record is not decoded:
   * whatever it holds, the key is taken.
   */
  async leaderTerm(): Promise<string | undefined> {
    const res = await this.call(() => this.client.kv.range({ key: Buffer.from(this.keys.leader()), keys_only: true }));
    return res.kvs[0]?.create_revision;
  }

  /** The current leader's record, or undefined when no master leads. */
  async getLeader(): Promise<LeaderInfo | undefined> {
    return (await this.get(this.keys.leader(), records.leader))?.value;
  }

  /** Compare that holds only while the given leadership term is current. */
  leaderGuard(term: string): ICompare {
    return txnCompare.createRevision(this.keys.leader(), term);
  }

  /** Gives up leadership of a term (no-op if the term already ended). */
  async resign(term: string): Promise<void> {
    await this.txn([this.leaderGuard(term)], [txnOp.del(this.keys.leader())]);
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

  // ---- queues ------------------------------------------------------------------

  getQueue(name: string): Promise<Versioned<Queue> | undefined> {
    return this.get(this.keys.queue(name), records.queue);
  }

  /** The stored queues, by name (the default queue is there only once someone updated it). */
  listQueues(): Promise<ReadResult & { items: Versioned<Queue>[] }> {
    return this.list(this.keys.collection('queues'), records.queue);
  }

  /** A queue that must exist; the default queue always does, stored or not. */
  async requireQueue(name: string): Promise<Queue> {
    const found = await this.getQueue(name);
    if (found) return found.value;
    if (name === DEFAULT_QUEUE) return implicitDefaultQueue();
    throw new TitanError('NotFound', `no queue "${name}" (see titan queue list)`);
  }

  /**
   * Creates a queue: Conflict if it exists, InvalidInput if the tree it
   * makes is not valid (validateQueueTree). Validated and written as one
   * optimistic step over the whole queue collection, so concurrent changes
   * cannot together break the tree (e.g. two children overrunning a quota).
   */
  async createQueue(queue: Queue): Promise<void> {
    if (queue.name === DEFAULT_QUEUE) {
      throw new TitanError('Conflict', `the default queue always exists; change it with titan queue update ${DEFAULT_QUEUE}`);
    }
    await this.writeQueues((queues) => {
      if (queues.some((q) => q.value.name === queue.name)) {
        throw new TitanError('Conflict', `queue "${queue.name}" already exists (change it with titan queue update ${queue.name})`);
      }
      return { put: queue, absent: queue.name };
    });
  }

  /**
   * Read-modify-write of one queue. The default queue is stored on its
   * first update (until then it exists implicitly). NotFound for a queue
   * that does not exist; InvalidInput if the change breaks the tree.
   */
  async updateQueue(name: string, change: (current: Queue) => Queue): Promise<Queue> {
    let next: Queue | undefined;
    await this.writeQueues((queues) => {
      const current = queues.find((q) => q.value.name === name);
      if (!current && name !== DEFAULT_QUEUE) throw new TitanError('NotFound', `no queue "${name}" (see titan queue list)`);
      next = { ...change(current?.value ?? implicitDefaultQueue()), name };
      return current ? { put: next, unchanged: current } : { put: next, absent: name };
    });
    return next as Queue;
  }

  /**
   * Deletes a queue. Refused (Conflict) while child queues name it as their
   * parent or jobs that have not ended are in it: those would be left without
   * a queue. A job submitted between that check and the delete is the one
   * race left; the scheduler treats a job whose queue is gone like one in a
   * queue with no quota (see docs/queues.md).
   */
  async deleteQueue(name: string): Promise<void> {
    if (name === DEFAULT_QUEUE) throw invalidInput('name', 'the default queue always exists; it cannot be deleted');
    let active = 0;
    await this.scan(this.keys.collection('jobs'), records.job, (page) => {
      for (const j of page) if (queueOf(j.value) === name && !isFinal(j.value.state)) active++;
    });
    await this.writeQueues((queues) => {
      const current = queues.find((q) => q.value.name === name);
      if (!current) throw new TitanError('NotFound', `no queue "${name}" (see titan queue list)`);
      const children = childQueues(queues.map((q) => q.value), name);
      if (children.length > 0) {
        throw new TitanError('Conflict', `queue "${name}" still has child queues (${children.map((c) => c.name).join(', ')}); delete or move them first`);
      }
      if (active > 0) {
        throw new TitanError('Conflict', `queue "${name}" still has ${active} job(s) that have not ended; cancel them or wait (titan list --status Pending,Scheduled,Running)`);
      }
      return { del: current };
    });
  }

  /**
   * One validated write to the queue collection: `plan` sees every stored
   * queue and says what to write; the tree after the write is validated, and
   * the transaction holds only if no queue was written since the read and
   * every queue the new one relies on (its parent) still exists unchanged.
   * A lost race re-reads and re-plans.
   */
  private async writeQueues(plan: (queues: readonly Versioned<Queue>[]) => QueueWrite): Promise<void> {
    const prefix = this.keys.collection('queues');
    for (let attempt = 0; attempt < MAX_CAS_RETRIES; attempt++) {
      const { items, revision } = await this.listQueues();
      const write = plan(items);
      const after = items.filter((q) => q.value.name !== write.put?.name && q.key !== write.del?.key).map((q) => q.value);
      if (write.put) after.push(write.put);
      validateQueueTree(after);
      const compare: ICompare[] = [
        // Range compare: no queue key was put since the read (deletions are covered by the compares below).
        { key: Buffer.from(prefix), range_end: prefixEnd(prefix), target: 'Mod', result: 'Less', mod_revision: String(BigInt(revision) + 1n) },
      ];
      const parent = write.put?.parent === undefined ? undefined : items.find((q) => q.value.name === write.put?.parent);
      if (parent) compare.push(txnCompare.modRevision(parent.key, parent.modRevision));
      if (write.absent !== undefined) compare.push(txnCompare.absent(this.keys.queue(write.absent)));
      if (write.unchanged) compare.push(txnCompare.modRevision(write.unchanged.key, write.unchanged.modRevision));
      if (write.del) compare.push(txnCompare.modRevision(write.del.key, write.del.modRevision));
      const success = write.put ? [txnOp.put(this.keys.queue(write.put.name), encode(write.put))] : [];
      if (write.del) success.push(txnOp.del(write.del.key));
      if ((await this.txn(compare, success)).succeeded) return;
    }
    throw new TitanError('Conflict', 'queues kept changing while this change was checked; try again');
  }

  // ---- API tokens ------------------------------------------------------------

  /** Stores a new token (its hash, never the secret); Conflict if the id is taken. */
  async createToken(token: ApiToken): Promise<void> {
    const key = this.keys.token(token.id);
    const { succeeded } = await this.txn([txnCompare.absent(key)], [txnOp.put(key, encode(token))]);
    if (!succeeded) throw new TitanError('Conflict', `token ${token.id} already exists; create another`);
  }

  getToken(tokenId: string): Promise<Versioned<ApiToken> | undefined> {
    return this.get(this.keys.token(tokenId), records.token);
  }

  listTokens(): Promise<ReadResult & { items: Versioned<ApiToken>[] }> {
    return this.list(this.keys.collection('tokens'), records.token);
  }

  /** Deletes a token: the API refuses it from the moment its watch sees the delete. NotFound if absent. */
  async revokeToken(tokenId: string): Promise<void> {
    const res = await this.call(() => this.client.delete().key(this.keys.token(tokenId)).exec());
    if (res.deleted === '0') throw new TitanError('NotFound', `no token ${tokenId} (see titan token list)`);
  }

  // ---- nodes and assignments ----------------------------------------------

  /**
   * Registers (or refreshes) a node under its lease: the key vanishes when the
   * lease does. Only while the key is absent or names the same `instance` (this
   * worker, or its restart from the same state dir): a second worker started
   * with a live node's id is refused instead of overwriting it. A key under no
   * lease, or one that does not read, is no live worker's and is taken over.
   * Each case is one compare-and-put; a change in between is looked at again.
   */
  async putNode(info: NodeInfo, leaseId: string): Promise<void> {
    const key = this.keys.node(info.id);
    const put = txnOp.put(key, encode(info), leaseId);
    for (let tries = 0; tries < MAX_CAS_RETRIES; tries++) {
      const res = await this.call(() => this.client.kv.txn({ compare: [txnCompare.absent(key)], success: [put], failure: [txnOp.get(key)] }));
      if (res.succeeded) return;
      const held = res.responses[0]?.response_range?.kvs[0];
      if (!held) continue; // gone meanwhile: absent again
      let instance: string | undefined;
      let live = held.lease !== '0'; // every worker registers under its lease: a key without one is no worker's
      try {
        instance = records.node.decode(held.value, key).instance;
      } catch (err) {
        if (!(err instanceof CorruptRecordError)) throw err;
        live = false; // a record no worker could have written holds nothing
      }
      if (live && instance !== info.instance) {
        throw new TitanError(
          'Conflict',
          `node id ${info.id} is already registered by another live worker (instance ${String(instance ?? 'unknown')}); ` +
            'stop that worker (a stopped or dead one lets go within its --ttl), or give this one another --node-id',
        );
      }
      const { succeeded } = await this.txn([txnCompare.modRevision(key, held.mod_revision)], [put]);
      if (succeeded) return;
    }
    throw new TitanError('Conflict', `the registration of node ${info.id} kept changing under this worker; try again`);
  }

  getNode(nodeId: string): Promise<Versioned<NodeInfo> | undefined> {
    return this.get(this.keys.node(nodeId), records.node);
  }

  getAssignment(nodeId: string, jobId: string): Promise<Versioned<Assignment> | undefined> {
    return this.get(this.keys.assignment(nodeId, jobId), records.assignment);
  }

  listNodes(): Promise<ReadResult & { items: Versioned<NodeInfo>[] }> {
    return this.list(this.keys.collection('nodes'), records.node);
  }

  listAssignments(nodeId?: string): Promise<ReadResult & { items: Versioned<Assignment>[] }> {
    return this.list(nodeId === undefined ? this.keys.collection('assign') : this.keys.nodeAssignments(nodeId), records.assignment);
  }

  // ---- logs ------------------------------------------------------------------

  /** Appends chunks of a job's output in one transaction, fenced like every worker write. */
  async appendLogChunks(assignment: Versioned<Assignment>, chunks: readonly LogChunk[]): Promise<boolean> {
    const { nodeId, jobId, attempt } = assignment.value;
    const { succeeded } = await this.txn(
      [txnCompare.createRevision(assignment.key, assignment.createRevision)],
      chunks.map((chunk) => txnOp.put(this.keys.logChunk(nodeId, jobId, attempt, chunk.seq), encode(chunk))),
    );
    return succeeded;
  }

  /**
   * The newest readable chunk of one attempt (where a re-attached run resumes
   * its log), if any. Corrupt chunks after it are passed over: the run's next
   * chunks overwrite them.
   */
  async lastLogChunk(nodeId: string, jobId: string, attempt: number): Promise<LogChunk | undefined> {
    let last: LogChunk | undefined;
    await this.scan(this.keys.attemptLogs(nodeId, jobId, attempt), records.logChunk, (page) => {
      last = page[0]?.value;
      return last === undefined;
    }, { descending: true, pageSize: 4 });
    return last;
  }

  /** Chunks of one attempt with seq > afterSeq, in order; corrupt ones are left out and reported. */
  async readLogChunks(nodeId: string, jobId: string, attempt: number, afterSeq = -1): Promise<ReadResult & { chunks: LogChunk[] }> {
    const prefix = this.keys.attemptLogs(nodeId, jobId, attempt);
    const from = afterSeq >= 0 ? this.keys.logChunk(nodeId, jobId, attempt, afterSeq + 1) : undefined;
    // Chunks are up to ~64 KiB: small pages keep each reply far below gRPC's 4 MiB.
    const { items, ...result } = await this.list(prefix, records.logChunk, { fromKey: from, pageSize: 16 });
    return { ...result, chunks: items.map((i) => i.value) };
  }
}
