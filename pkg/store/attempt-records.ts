import type { ICompare, IKeyValue, IRequestOp } from 'etcd3';
import type { Assignment } from '../model/assignment.js';
import { invalidInput, TitanError } from '../model/errors.js';
import type { Job } from '../model/job.js';
import type { RunReport } from '../model/run-report.js';
import { assertTransition } from '../model/transitions.js';
import { CorruptRecordError, encode, records } from './codec.js';
import { StoreCore, type ReadResult, type TxnResult } from './store-core.js';
import { MAX_TXN_OPS, txnCompare, txnOp } from './txn.js';
import { toVersioned, type Versioned } from './versioned.js';

/** Node reports per transaction (Store.writeReports): a compare, a put and a read each, within etcd's limit per list. */
export const REPORTS_PER_TXN = MAX_TXN_OPS;

/**
 * A node's report on an attempt, fenced by the attempt's assignment: a claim
 * by the exact version the node saw (so a cancel or eviction flagged since
 * fails it), any later report by the assignment's creation (the attempt is
 * still this node's).
 */
export type ReportWrite =
  | { assignment: Pick<Versioned<Assignment>, 'key' | 'createRevision' | 'modRevision' | 'value'>; report: RunReport; fence: 'claim' }
  | { assignment: Pick<Versioned<Assignment>, 'key' | 'createRevision' | 'value'>; report: RunReport; fence: 'end' };

/** How a report write went: written; fenced (the attempt is not this node's); or (a claim) the assignment changed, as it is now. */
export type ReportWriteOutcome = { outcome: 'written' | 'fenced' } | { outcome: 'changed'; assignment: Versioned<Assignment> };

function reportFence(write: ReportWrite): ICompare {
  const { key } = write.assignment;
  return write.fence === 'claim' ? txnCompare.modRevision(key, write.assignment.modRevision) : txnCompare.createRevision(key, write.assignment.createRevision);
}

/** The outcome of a write whose batch failed, from its assignment as the same transaction read it; undefined: its own fence held. */
function fencedOutcome(write: ReportWrite, kv: IKeyValue | undefined): ReportWriteOutcome | undefined {
  if (!kv || kv.create_revision !== write.assignment.createRevision) return { outcome: 'fenced' };
  if (write.fence === 'end' || kv.mod_revision === write.assignment.modRevision) return undefined;
  const current = readableAssignment(kv);
  return current ? { outcome: 'changed', assignment: current } : { outcome: 'fenced' };
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

/** An assignment read inside another operation: a corrupt one counts as gone (it is quarantined where it is listed). */
function readableAssignment(kv: IKeyValue): Versioned<Assignment> | undefined {
  try {
    return toVersioned(kv, records.assignment);
  } catch (err) {
    if (err instanceof CorruptRecordError) return undefined;
    throw err;
  }
}

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
 * Attempts: a placement (the job Scheduled, its assignment on a node), the
 * node's reports on it, the master's folding of those into the job, and
 * evictions and ends decided from outside the node.
 */
export abstract class AttemptRecords extends StoreCore {
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
  getAssignment(nodeId: string, jobId: string): Promise<Versioned<Assignment> | undefined> {
    return this.get(this.keys.assignment(nodeId, jobId), records.assignment);
  }
  listAssignments(nodeId?: string): Promise<ReadResult & { items: Versioned<Assignment>[] }> {
    return this.list(nodeId === undefined ? this.keys.collection('assign') : this.keys.nodeAssignments(nodeId), records.assignment);
  }
  /**
   * A node's report on an attempt it holds (its own key), fenced by the
   * assignment: a node whose assignment was taken away writes nothing.
   * False when fenced.
   */
  async putReport(assignment: Pick<Versioned<Assignment>, 'key' | 'createRevision' | 'value'>, report: RunReport): Promise<boolean> {
    const [result] = await this.writeReports([{ assignment, report, fence: 'end' }]);
    return result.outcome === 'written';
  }
  /**
   * The claim: a node's first report on an attempt (Running, or Ended when
   * it was stopped before it started), only if the assignment is exactly as
   * the node saw it. A cancel or eviction flagged on the assignment since
   * changes it: the node gets the new version back (`changed`) and looks
   * again, so a run cancelled before its claim never starts.
   */
  async claimRun(assignment: Pick<Versioned<Assignment>, 'key' | 'createRevision' | 'modRevision' | 'value'>, report: RunReport): Promise<{ outcome: 'claimed' | 'fenced' } | { outcome: 'changed'; assignment: Versioned<Assignment> }> {
    const [result] = await this.writeReports([{ assignment, report, fence: 'claim' }]);
    if (result.outcome === 'written') return { outcome: 'claimed' };
    return result.outcome === 'changed' ? result : { outcome: 'fenced' };
  }
  /**
   * Reports of many attempts (at most REPORTS_PER_TXN), each fenced by its
   * own assignment as putReport and claimRun fence one, in one transaction
   * when none is fenced. When one is, the same transaction reads every
   * assignment back: those whose fence failed get their outcome from it,
   * and the others are written again without them. Each failed round
   * settles at least one write, so this ends.
   */
  async writeReports(writes: readonly ReportWrite[]): Promise<ReportWriteOutcome[]> {
    const outcomes = new Array<ReportWriteOutcome>(writes.length);
    let open = writes.map((_, i) => i);
    while (open.length > 0) {
      const batch = open;
      const res = await this.call(() =>
        this.client.kv.txn({
          compare: batch.map((i) => reportFence(writes[i])),
          success: batch.map((i) => txnOp.put(this.keys.report(writes[i].assignment.value.nodeId, writes[i].assignment.value.jobId), encode(writes[i].report))),
          failure: batch.map((i) => txnOp.get(writes[i].assignment.key)),
        }),
      );
      if (res.succeeded) {
        for (const i of batch) outcomes[i] = { outcome: 'written' };
        break;
      }
      open = [];
      batch.forEach((i, n) => {
        const settled = fencedOutcome(writes[i], res.responses[n]?.response_range?.kvs[0]);
        if (settled) outcomes[i] = settled;
        else open.push(i);
      });
      if (open.length === batch.length) throw new TitanError('Internal', 'a batch of node reports failed its fences, but every assignment read back as fenced');
    }
    return outcomes;
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
  /**
   * Several folds in one transaction, all or none (at most FOLDS_PER_TXN).
   * Throws IllegalTransitionError, writing nothing, if a fold's `next` takes
   * its job to a state the table forbids.
   */
  async foldReports(folds: readonly ReportFold[], guard: readonly ICompare[] = []): Promise<TxnResult> {
    const compare: ICompare[] = [...guard];
    const success: IRequestOp[] = [];
    for (const fold of folds) {
      compare.push(txnCompare.modRevision(fold.report.key, fold.report.modRevision));
      if (fold.job) {
        compare.push(txnCompare.modRevision(fold.job.key, fold.job.modRevision));
        if (fold.next) {
          assertTransition(fold.job.value, fold.next.state);
          success.push(txnOp.put(fold.job.key, encode(fold.next)));
        }
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
}
