import { describe, expect, it, vi } from 'vitest';
import { records } from '../../pkg/store/index.js';
import { isTitanError, type Assignment, type Job } from '../../pkg/model/index.js';
import { encode, MAX_ASSIGNED_JOB_BYTES, placedJob, txnOp, type JobVersion, type Store, type Versioned } from '../../pkg/store/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { makeJob } from '../harness/jobs.js';

const ctx = etcdSuite('store-owned-update');
const NODE = 'n1';

const job = (): Job => makeJob();

/** Places an attempt the way the master does: the job Scheduled and its assignment in one transaction. */
async function place(store: Store, base: Job, attempt: number): Promise<Versioned<Assignment>> {
  const key = store.keys.assignment(NODE, base.id);
  const assignment: Assignment = { jobId: base.id, nodeId: NODE, attempt, resources: base.resources, gpuDevices: [], assignedAt: Date.now() };
  // A requeue deletes the previous assignment first (etcd allows one op per key per transaction).
  await store.txn([], [txnOp.del(key)]);
  await store.txn([], [txnOp.put(store.keys.job(base.id), encode({ ...base, state: 'Scheduled', node: NODE, attempt })), txnOp.put(key, encode(assignment))]);
  const placed = await store.get(key, records.assignment);
  if (!placed) throw new Error('no assignment');
  return placed;
}

/** Counts the etcd round trips of the store: reads (range) and transactions. */
function countCalls(store: Store): { ranges: () => number; txns: () => number } {
  const range = vi.spyOn(store.client.kv, 'range');
  const txn = vi.spyOn(store.client.kv, 'txn');
  return { ranges: () => range.mock.calls.length, txns: () => txn.mock.calls.length };
}

const running = (j: Job): Job | undefined => (j.state === 'Scheduled' ? { ...j, state: 'Running', startedAt: Date.now(), node: NODE } : undefined);
/** The end a worker records: Cancelled when a cancel came meanwhile. */
const ended = (j: Job): Job => ({ ...j, state: j.cancelRequested ? 'Cancelled' : 'Succeeded', exitCode: 0, finishedAt: Date.now() });

/** Running, written the usual way (a read, then the transaction); returns what it wrote. */
async function claim(store: Store, assignment: Versioned<Assignment>): Promise<JobVersion> {
  const result = await store.updateOwnedJob(assignment, running);
  if (result.outcome !== 'updated') throw new Error(`claim: ${result.outcome}`);
  return result.job;
}

/** A new job, placed (attempt 1) and claimed: what a worker holds while the job runs. */
async function claimedJob(store: Store): Promise<{ base: Job; assignment: Versioned<Assignment>; written: JobVersion }> {
  const base = job();
  await store.createJobs([base]);
  const assignment = await place(store, base, 1);
  return { base, assignment, written: await claim(store, assignment) };
}

describe('Store.updateOwnedJob', () => {
  it('returns what it wrote and the revision it wrote it at; given that version, the next write is one transaction and no read', async () => {
    const { store } = ctx;
    const base = job();
    await store.createJobs([base]);
    const assignment = await place(store, base, 1);
    const calls = countCalls(store);

    const written = await claim(store, assignment);
    expect([calls.ranges(), calls.txns()]).toEqual([1, 1]);
    const stored = await store.getJob(base.id);
    expect(written.modRevision).toBe(stored?.modRevision);
    expect(written.value).toEqual(stored?.value);

    const before = [calls.ranges(), calls.txns()];
    const seen: Job[] = [];
    const result = await store.updateOwnedJob(assignment, (j) => (seen.push(j), ended(j)), written);
    expect([calls.ranges() - before[0], calls.txns() - before[1]]).toEqual([0, 1]);
    expect(seen).toEqual([written.value]);
    expect(result.outcome).toBe('updated');
    const final = await store.getJob(base.id);
    expect(final?.value.state).toBe('Succeeded');
    expect(result.outcome === 'updated' && result.job.modRevision).toBe(final?.modRevision);
    // The final write released the assignment in the same transaction.
    expect(await store.get(assignment.key, records.assignment)).toBeUndefined();
  });

  it('a cancel between Running and Succeeded: the failed transaction returns the job, and the retry writes from it without a read', async () => {
    const { store } = ctx;
    const { base, assignment, written } = await claimedJob(store);
    await store.cancelJob(base.id, 1000, Date.now(), 'test cancel');
    const calls = countCalls(store);

    const seen: Job[] = [];
    const result = await store.updateOwnedJob(assignment, (j) => (seen.push(j), ended(j)), written);
    // One transaction lost to the cancel, one that held; no separate read.
    expect([calls.ranges(), calls.txns()]).toEqual([0, 2]);
    expect(seen.map((j) => j.cancelRequested ?? false)).toEqual([false, true]);
    expect(result.outcome).toBe('updated');
    const final = await store.getJob(base.id);
    expect(final?.value).toMatchObject({ state: 'Cancelled', cancelRequested: true, cancelReason: 'test cancel' });
    expect(result.outcome === 'updated' && result.job.modRevision).toBe(final?.modRevision);
    expect(await store.get(assignment.key, records.assignment)).toBeUndefined();
  });

  it('a stale known version (the job was written since) costs one more transaction, not a read', async () => {
    const { store } = ctx;
    const { base, assignment, written } = await claimedJob(store);
    // Someone else rewrote the job (same content, new revision): e.g. a status note.
    const stale: JobVersion = { value: written.value, modRevision: String(BigInt(written.modRevision) - 1n) };
    const calls = countCalls(store);

    const result = await store.updateOwnedJob(assignment, ended, stale);
    expect([calls.ranges(), calls.txns()]).toEqual([0, 2]);
    expect(result.outcome).toBe('updated');
    expect((await store.getJob(base.id))?.value.state).toBe('Succeeded');
  });

  it('is fenced in one round trip when the assignment was taken (requeued and placed again) after the known version', async () => {
    const { store } = ctx;
    const base = job();
    await store.createJobs([base]);
    const first = await place(store, base, 1);
    const written = await claim(store, first);
    // The master requeued the attempt and placed it again on the same node: same key, new attempt and create revision.
    await place(store, base, 2);
    const before = await store.getJob(base.id);
    const calls = countCalls(store);

    const result = await store.updateOwnedJob(first, ended, written);
    expect(result).toEqual({ outcome: 'fenced' });
    expect([calls.ranges(), calls.txns()]).toEqual([0, 1]);
    const after = await store.getJob(base.id);
    expect(after?.modRevision).toBe(before?.modRevision);
    expect(after?.value).toEqual(before?.value);
    expect(await store.get(first.key, records.assignment)).toBeDefined();
  });

  it('is fenced when the assignment was re-created for the same attempt, and when it is gone', async () => {
    const { store } = ctx;
    const { base, assignment, written } = await claimedJob(store);

    // Same attempt number, re-created: only the create revision tells it apart.
    await store.txn([], [txnOp.del(assignment.key)]);
    await store.txn([], [txnOp.put(assignment.key, encode(assignment.value))]);
    const before = await store.getJob(base.id);
    expect(await store.updateOwnedJob(assignment, ended, written)).toEqual({ outcome: 'fenced' });
    expect((await store.getJob(base.id))?.modRevision).toBe(before?.modRevision);

    // Gone altogether.
    await store.txn([], [txnOp.del(assignment.key)]);
    expect(await store.updateOwnedJob(assignment, ended, written)).toEqual({ outcome: 'fenced' });
    expect((await store.getJob(base.id))?.modRevision).toBe(before?.modRevision);
  });

  it('is fenced when the job was deleted although the assignment is still there', async () => {
    const { store } = ctx;
    const { base, assignment, written } = await claimedJob(store);
    await store.txn([], [txnOp.del(store.keys.job(base.id))]);

    expect(await store.updateOwnedJob(assignment, ended, written)).toEqual({ outcome: 'fenced' });
    expect(await store.getJob(base.id)).toBeUndefined();
  });

  it('does not trust a known version of another attempt or another job: it reads the job first', async () => {
    const { store } = ctx;
    const base = job();
    const other = job();
    await store.createJobs([base, other]);
    const assignment = await place(store, base, 1);
    const written = await claim(store, assignment);
    const calls = countCalls(store);

    const wrongAttempt: JobVersion = { value: { ...written.value, attempt: 7 }, modRevision: written.modRevision };
    const seen: Job[] = [];
    const result = await store.updateOwnedJob(assignment, (j) => (seen.push(j), { ...j, reason: 'one' }), wrongAttempt);
    expect(result.outcome).toBe('updated');
    expect(seen.map((j) => j.attempt)).toEqual([1]);
    expect(calls.ranges()).toBe(1);

    // Another job's value at a revision this job may share (a placement writes many jobs at one revision).
    const now = await store.getJob(base.id);
    if (!now) throw new Error('no job');
    const otherJob: JobVersion = { value: { ...other, state: 'Running', attempt: 1 }, modRevision: now.modRevision };
    const seen2: Job[] = [];
    expect((await store.updateOwnedJob(assignment, (j) => (seen2.push(j), { ...j, reason: 'two' }), otherJob)).outcome).toBe('updated');
    expect(seen2.map((j) => j.id)).toEqual([base.id]);
    expect((await store.getJob(base.id))?.value).toMatchObject({ id: base.id, reason: 'two' });
    expect((await store.getJob(other.id))?.value.state).toBe('Pending');
  });

  it('never decides "unchanged" on the known version alone: it reads the stored job first', async () => {
    const { store } = ctx;
    const { base, assignment, written } = await claimedJob(store);
    await store.cancelJob(base.id, 1000);

    // Write only if a cancel came: the known version has none, the stored job has.
    const onCancel = (j: Job): Job | undefined => (j.cancelRequested ? { ...j, state: 'Cancelled', finishedAt: Date.now() } : undefined);
    const result = await store.updateOwnedJob(assignment, onCancel, written);
    expect(result.outcome).toBe('updated');
    expect((await store.getJob(base.id))?.value.state).toBe('Cancelled');

    // Nothing to write for the stored job either: unchanged, with the version it looked at.
    const again = await place(store, base, 2);
    const result2 = await store.updateOwnedJob(again, onCancel);
    expect(result2.outcome).toBe('unchanged');
    expect(result2.outcome === 'unchanged' && result2.job.modRevision).toBe((await store.getJob(base.id))?.modRevision);
  });

  it('gives up with Conflict when the job changes before every transaction', async () => {
    const { store } = ctx;
    const { base, assignment, written } = await claimedJob(store);
    const jobKey = store.keys.job(base.id);
    const kv = store.client.kv;
    const txn = kv.txn.bind(kv);
    let bumps = 0;
    const spy = vi.spyOn(kv, 'txn').mockImplementation(async (req) => {
      // Another writer gets in first every time (the job's content stays the same, its revision moves).
      const current = await store.getJob(base.id);
      await store.client.put(jobKey).value(encode(current?.value));
      bumps++;
      return txn(req);
    });
    let code = 'ok';
    try {
      await store.updateOwnedJob(assignment, ended, written);
    } catch (err) {
      code = isTitanError(err) ? err.code : String(err);
    }
    spy.mockRestore();
    expect(code).toBe('Conflict');
    expect(bumps).toBe(50);
    expect((await store.getJob(base.id))?.value.state).toBe('Running');
  });
});

/** Registers node n1 (a plain key: commitPlacements only compares its create revision). */
async function registerNode(store: Store): Promise<string> {
  const key = store.keys.node(NODE);
  // A new key's create revision is the revision of the transaction that put it.
  return (await store.txn([], [txnOp.put(key, encode({ id: NODE }))])).revision;
}

/** Places attempt 1 of a stored Pending job through Store.commitPlacements, as the master's committer does. */
async function commitPlacement(store: Store, base: Job, extra: Partial<Assignment> = {}): Promise<Versioned<Assignment>> {
  const nodeCreateRevision = await registerNode(store);
  const stored = await store.requireJob(base.id);
  const now = Date.now();
  const scheduled: Job = { ...stored.value, state: 'Scheduled', node: NODE, attempt: 1, gpuDevices: [], scheduledAt: now };
  const assignment = { jobId: base.id, nodeId: NODE, attempt: 1, resources: base.resources, gpuDevices: [], assignedAt: now, ...extra };
  expect((await store.commitPlacements([{ job: stored, scheduled, assignment, nodeCreateRevision }])).succeeded).toBe(true);
  const placed = await store.get(store.keys.assignment(NODE, base.id), records.assignment);
  if (!placed) throw new Error('no assignment');
  return placed;
}

/** The worker's claim (JobRun.run): Running from Scheduled, Cancelled if a cancel came first. */
const workerClaim = (j: Job): Job | undefined => {
  if (j.state !== 'Scheduled') return undefined;
  if (j.cancelRequested) return { ...j, state: 'Cancelled', reason: 'cancelled before it started', finishedAt: Date.now() };
  return { ...j, state: 'Running', startedAt: Date.now(), node: NODE };
};

describe('the assignment carries the job as placed (placedJob)', () => {
  it('commitPlacements stores the Scheduled job in the assignment, byte for byte, at the revision of the job key', async () => {
    const { store } = ctx;
    const base = { ...job(), env: { A: 'b' }, labels: { team: 'x' } };
    await store.createJobs([base]);
    const assignment = await commitPlacement(store, base);
    const stored = await store.getJob(base.id);
    expect(placedJob(assignment)?.value).toEqual(stored?.value);
    expect(placedJob(assignment)?.value).toMatchObject({ state: 'Scheduled', node: NODE, attempt: 1 });
    expect(placedJob(assignment)).toEqual({ value: stored?.value, modRevision: stored?.modRevision });
    expect(assignment.createRevision).toBe(stored?.modRevision);
    // The copy is the job key's bytes as they are (encoded once).
    const jobRaw = await store.client.get(store.keys.job(base.id)).buffer();
    expect(Buffer.from(assignment.value.job ?? []).equals(jobRaw as Buffer)).toBe(true);
  });

  it('a worker-style claim of a fresh placement takes one transaction and no read', async () => {
    const { store } = ctx;
    const base = job();
    await store.createJobs([base]);
    const assignment = await commitPlacement(store, base);
    const calls = countCalls(store);

    const seen: Job[] = [];
    const result = await store.updateOwnedJob(assignment, (j) => (seen.push(j), workerClaim(j)), placedJob(assignment));
    expect([calls.ranges(), calls.txns()]).toEqual([0, 1]);
    expect(seen).toEqual([placedJob(assignment)?.value]);
    expect(result.outcome).toBe('updated');
    const stored = await store.getJob(base.id);
    expect(stored?.value.state).toBe('Running');
    expect(result.outcome === 'updated' && result.job).toEqual({ value: stored?.value, modRevision: stored?.modRevision });
  });

  it('a cancel between placement and claim: the claim sees it (one lost transaction, no read) and records Cancelled', async () => {
    const { store } = ctx;
    const base = job();
    await store.createJobs([base]);
    const assignment = await commitPlacement(store, base);
    await store.cancelJob(base.id, 1000, Date.now(), 'test cancel');
    // The cancel re-put the assignment with its flag and the copy as placed.
    const flagged = await store.get(assignment.key, records.assignment);
    expect(flagged?.value.cancel).toBeDefined();
    expect(flagged?.value.job).toEqual(assignment.value.job);
    expect(flagged?.createRevision).toBe(assignment.createRevision);

    // A worker that saw the assignment before the cancel, and one that saw it after: both start from the stale copy.
    for (const seenBy of [assignment, flagged as Versioned<Assignment>]) {
      const calls = countCalls(store);
      const seen: Job[] = [];
      const known = placedJob(seenBy);
      expect(known?.value.cancelRequested).toBeUndefined();
      const result = await store.updateOwnedJob(seenBy, (j) => (seen.push(j), workerClaim(j)), known);
      if (seenBy === assignment) {
        expect([calls.ranges(), calls.txns()]).toEqual([0, 2]);
        expect(seen.map((j) => j.cancelRequested ?? false)).toEqual([false, true]);
        expect(result.outcome).toBe('updated');
        const final = await store.getJob(base.id);
        expect(final?.value).toMatchObject({ state: 'Cancelled', cancelRequested: true, cancelReason: 'test cancel' });
        // The Cancelled write released the assignment.
        expect(await store.get(assignment.key, records.assignment)).toBeUndefined();
      } else {
        // The attempt already ended (and the assignment went with it): fenced, nothing written.
        expect(result).toEqual({ outcome: 'fenced' });
      }
      vi.restoreAllMocks();
    }
  });

  it('a cancel seen only on the flagged assignment (the job written since): the claim still ends it from the stored job', async () => {
    const { store } = ctx;
    const base = job();
    await store.createJobs([base]);
    await commitPlacement(store, base);
    await store.cancelJob(base.id, 1000);
    const flagged = await store.get(store.keys.assignment(NODE, base.id), records.assignment);
    if (!flagged) throw new Error('no assignment');
    const calls = countCalls(store);
    const seen: Job[] = [];
    const result = await store.updateOwnedJob(flagged, (j) => (seen.push(j), workerClaim(j)), placedJob(flagged));
    expect([calls.ranges(), calls.txns()]).toEqual([0, 2]);
    expect(seen.map((j) => j.state)).toEqual(['Scheduled', 'Scheduled']);
    expect(result.outcome).toBe('updated');
    expect((await store.getJob(base.id))?.value.state).toBe('Cancelled');
  });

  it('an eviction re-puts the assignment with the copy as it was', async () => {
    const { store } = ctx;
    const base = job();
    await store.createJobs([base]);
    const assignment = await commitPlacement(store, base);
    const res = await store.evictJobs([{ nodeId: NODE, jobId: base.id, reason: 'Preempted by job Y' }], 1000);
    expect(res.evicted).toEqual([base.id]);
    const evicted = await store.get(assignment.key, records.assignment);
    expect(evicted?.value.evict?.reason).toBe('Preempted by job Y');
    expect(evicted?.value.job).toEqual(assignment.value.job);
  });

  it('without a copy (an older master, or a job too large to copy) the claim reads the job first', async () => {
    const { store } = ctx;
    const older = job();
    await store.createJobs([older]);
    const placed = await place(store, older, 1);
    expect(placed.value.job).toBeUndefined();
    expect(placedJob(placed)).toBeUndefined();
    let calls = countCalls(store);
    expect((await store.updateOwnedJob(placed, workerClaim, placedJob(placed))).outcome).toBe('updated');
    expect([calls.ranges(), calls.txns()]).toEqual([1, 1]);
    vi.restoreAllMocks();

    const large = { ...job(), env: { BIG: 'x'.repeat(MAX_ASSIGNED_JOB_BYTES) } };
    await store.createJobs([large]);
    const assignment = await commitPlacement(store, large);
    expect(assignment.value.job).toBeUndefined();
    calls = countCalls(store);
    expect((await store.updateOwnedJob(assignment, workerClaim, placedJob(assignment))).outcome).toBe('updated');
    expect([calls.ranges(), calls.txns()]).toEqual([1, 1]);
    expect((await store.getJob(large.id))?.value.state).toBe('Running');
  });

  it('a copy of another attempt (the assignment re-created since) is not trusted', async () => {
    const { store } = ctx;
    const base = job();
    await store.createJobs([base]);
    const first = await commitPlacement(store, base);
    // The attempt was requeued and placed again: same key, attempt 2, the new job at the new revision.
    const second = await place(store, base, 2);
    const before = await store.getJob(base.id);
    const calls = countCalls(store);
    // The first assignment's holder claims from its copy (attempt 1): fenced in one round trip, nothing written.
    expect(await store.updateOwnedJob(first, workerClaim, placedJob(first))).toEqual({ outcome: 'fenced' });
    expect([calls.ranges(), calls.txns()]).toEqual([0, 1]);
    expect((await store.getJob(base.id))?.modRevision).toBe(before?.modRevision);
    // A copy of attempt 1 handed with the new assignment: the attempt differs, so the job is read.
    vi.restoreAllMocks();
    const mixed: JobVersion = { value: (placedJob(first) as JobVersion).value, modRevision: second.createRevision };
    const seen: Job[] = [];
    expect((await store.updateOwnedJob(second, (j) => (seen.push(j), workerClaim(j)), mixed)).outcome).toBe('updated');
    expect(seen.map((j) => j.attempt)).toEqual([2]);
  });
});
