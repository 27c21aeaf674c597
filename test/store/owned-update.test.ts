import { describe, expect, it, vi } from 'vitest';
import { isTitanError, newJobId, type Assignment, type Job } from '../../pkg/model/index.js';
import { encode, txnOp, type JobVersion, type Store, type Versioned } from '../../pkg/store/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';

const ctx = etcdSuite('store-owned-update');
const NODE = 'n1';

function job(): Job {
  return {
    id: newJobId(),
    name: 'j',
    kind: 'shell',
    command: ['true'],
    env: {},
    resources: { cpu: 100, memory: 2 ** 20, gpuMilli: 0 },
    priority: 0,
    labels: {},
    state: 'Pending',
    createdAt: Date.now(),
    attempt: 0,
  };
}

/** Places an attempt the way the master does: the job Scheduled and its assignment in one transaction. */
async function place(store: Store, base: Job, attempt: number): Promise<Versioned<Assignment>> {
  const key = store.keys.assignment(NODE, base.id);
  const assignment: Assignment = { jobId: base.id, nodeId: NODE, attempt, resources: base.resources, gpuDevices: [], assignedAt: Date.now() };
  // A requeue deletes the previous assignment first (etcd allows one op per key per transaction).
  await store.txn([], [txnOp.del(key)]);
  await store.txn([], [txnOp.put(store.keys.job(base.id), encode({ ...base, state: 'Scheduled', node: NODE, attempt })), txnOp.put(key, encode(assignment))]);
  const placed = await store.get<Assignment>(key);
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
    expect(await store.get(assignment.key)).toBeUndefined();
  });

  it('a cancel between Running and Succeeded: the failed transaction returns the job, and the retry writes from it without a read', async () => {
    const { store } = ctx;
    const base = job();
    await store.createJobs([base]);
    const assignment = await place(store, base, 1);
    const written = await claim(store, assignment);
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
    expect(await store.get(assignment.key)).toBeUndefined();
  });

  it('a stale known version (the job was written since) costs one more transaction, not a read', async () => {
    const { store } = ctx;
    const base = job();
    await store.createJobs([base]);
    const assignment = await place(store, base, 1);
    const written = await claim(store, assignment);
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
    expect(await store.get(first.key)).toBeDefined();
  });

  it('is fenced when the assignment was re-created for the same attempt, and when it is gone', async () => {
    const { store } = ctx;
    const base = job();
    await store.createJobs([base]);
    const assignment = await place(store, base, 1);
    const written = await claim(store, assignment);

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
    const base = job();
    await store.createJobs([base]);
    const assignment = await place(store, base, 1);
    const written = await claim(store, assignment);
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
    const base = job();
    await store.createJobs([base]);
    const assignment = await place(store, base, 1);
    const written = await claim(store, assignment);
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
    const base = job();
    await store.createJobs([base]);
    const assignment = await place(store, base, 1);
    const written = await claim(store, assignment);
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
