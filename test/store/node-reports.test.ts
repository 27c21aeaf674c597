import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_RETRY_POLICY, foldReport, NO_CAUSES, type Assignment, type Job, type RunReport } from '../../pkg/model/index.js';
import { encode, placedJob, records, txnOp, type Store, type Versioned } from '../../pkg/store/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { makeJob } from '../harness/jobs.js';

/**
 * The node side and the master side of an attempt against a real etcd: a
 * node writes only reports under its own prefix, fenced by its assignment;
 * the master folds each into the job once, in one transaction with the
 * assignment's and the report's removal.
 */
const ctx = etcdSuite('store-node-reports');
const NODE = 'n1';

/** Registers node n1 (a plain key: commitPlacements only compares its create revision). */
async function registerNode(store: Store): Promise<string> {
  await store.txn([], [txnOp.put(store.keys.node(NODE), encode({ id: NODE }))]);
  // Put again, a key keeps the create revision of its first put.
  return (await store.client.get(store.keys.node(NODE)).exec()).kvs[0].create_revision;
}

/** Places attempt 1 of a stored Pending job through Store.commitPlacements, as the master's committer does. */
async function commitPlacement(store: Store, base: Job): Promise<Versioned<Assignment>> {
  const nodeCreateRevision = await registerNode(store);
  const stored = await store.requireJob(base.id);
  const now = Date.now();
  const scheduled: Job = { ...stored.value, state: 'Scheduled', node: NODE, attempt: 1, gpuDevices: [], scheduledAt: now };
  const assignment = { jobId: base.id, nodeId: NODE, attempt: 1, resources: base.resources, gpuDevices: [], assignedAt: now };
  expect((await store.commitPlacements([{ job: stored, scheduled, assignment, nodeCreateRevision }])).succeeded).toBe(true);
  const placed = await store.get(store.keys.assignment(NODE, base.id), records.assignment);
  if (!placed) throw new Error('no assignment');
  return placed;
}

async function placed(store: Store, overrides: Partial<Job> = {}): Promise<{ base: Job; assignment: Versioned<Assignment> }> {
  const base = makeJob(overrides);
  await store.createJobs([base]);
  return { base, assignment: await commitPlacement(store, base) };
}

const running = (jobId: string): RunReport => ({ jobId, attempt: 1, state: 'Running', startedAt: Date.now() });
const exited = (jobId: string, exitCode: number): RunReport => ({
  ...running(jobId),
  state: 'Ended',
  end: { result: { type: 'exited', exitCode }, causes: NO_CAUSES, finishedAt: Date.now() },
});

/** The master's fold of the node's current report (ReportFolder.fold, without the watch). */
async function fold(store: Store, jobId: string): Promise<boolean> {
  const report = await store.getReport(NODE, jobId);
  const job = await store.requireJob(jobId);
  const assignment = await store.getAssignment(NODE, jobId);
  if (!report || !assignment) throw new Error('nothing to fold');
  const next = foldReport(job.value, report.value, NODE, DEFAULT_RETRY_POLICY);
  return (await store.foldReport({ report, job, next, assignment, release: report.value.state === 'Ended' })).succeeded;
}

describe('node reports', () => {
  it('the assignment carries the Scheduled job byte for byte: all a node reads of it', async () => {
    const { store } = ctx;
    const { base, assignment } = await placed(store, { env: { A: 'b' }, labels: { team: 'x' }, command: ['x'.repeat(8 * 1024)] });
    const stored = await store.requireJob(base.id);
    expect(placedJob(assignment)).toEqual(stored.value);
    expect(assignment.createRevision).toBe(stored.modRevision);
    const jobRaw = await store.client.get(store.keys.job(base.id)).buffer();
    expect(Buffer.from(assignment.value.job ?? []).equals(jobRaw as Buffer)).toBe(true);
  });

  it('claim, Running, end: each report folds into the job once, and the end releases the assignment and the report', async () => {
    const { store } = ctx;
    const { base, assignment } = await placed(store);
    expect(await store.claimRun(assignment, running(base.id))).toEqual({ outcome: 'claimed' });
    expect(await fold(store, base.id)).toBe(true);
    expect((await store.requireJob(base.id)).value).toMatchObject({ state: 'Running', node: NODE, attempt: 1 });
    // The same report again is no change (nothing to write), and the report stays until the attempt ends.
    expect(await fold(store, base.id)).toBe(true);
    expect(await store.getReport(NODE, base.id)).toBeDefined();

    expect(await store.putReport(assignment, exited(base.id, 0))).toBe(true);
    const report = await store.getReport(NODE, base.id);
    const job = await store.requireJob(base.id);
    expect(await fold(store, base.id)).toBe(true);
    expect((await store.requireJob(base.id)).value).toMatchObject({ state: 'Succeeded', exitCode: 0 });
    expect(await store.getAssignment(NODE, base.id)).toBeUndefined();
    expect(await store.getReport(NODE, base.id)).toBeUndefined();
    // A second master folding the same report (as read before) changes nothing: its compares fail.
    if (!report) throw new Error('no report');
    const again = await store.foldReport({ report, job, next: foldReport(job.value, report.value, NODE, DEFAULT_RETRY_POLICY), assignment, release: true });
    expect(again.succeeded).toBe(false);
  });

  it('a cancel flagged after the node saw the assignment fails the claim, and hands the node the flagged assignment', async () => {
    const { store } = ctx;
    const { base, assignment } = await placed(store);
    await store.cancelJob(base.id, 1000);
    const claim = await store.claimRun(assignment, running(base.id));
    expect(claim.outcome).toBe('changed');
    expect(claim.outcome === 'changed' && claim.assignment.value.cancel).toBeDefined();
    expect(await store.getReport(NODE, base.id)).toBeUndefined();
  });

  it('a node whose assignment was re-created (requeued and placed again) writes nothing', async () => {
    const { store } = ctx;
    const { base, assignment } = await placed(store);
    await store.txn([], [txnOp.del(assignment.key)]);
    await store.txn([], [txnOp.put(assignment.key, encode({ ...assignment.value, attempt: 2 }))]);
    expect(await store.claimRun(assignment, running(base.id))).toEqual({ outcome: 'fenced' });
    expect(await store.putReport(assignment, exited(base.id, 1))).toBe(false);
    expect(await store.getReport(NODE, base.id)).toBeUndefined();
  });

  it('reports of many attempts go in one transaction; a fenced one and a changed one get their outcome, and only the rest are written', async () => {
    const { store } = ctx;
    // One at a time: each placement registers the node again.
    const [fine, gone, cancelled, cancelledEnd, ending] = [await placed(store), await placed(store), await placed(store), await placed(store), await placed(store)];
    await store.txn([], [txnOp.del(gone.assignment.key)]);
    await store.cancelJob(cancelled.base.id, 1000);
    await store.cancelJob(cancelledEnd.base.id, 1000);
    const txns = vi.spyOn(store.client.kv, 'txn');
    const outcomes = await store.writeReports([
      { assignment: fine.assignment, report: running(fine.base.id), fence: 'claim' },
      { assignment: gone.assignment, report: running(gone.base.id), fence: 'claim' },
      { assignment: cancelled.assignment, report: running(cancelled.base.id), fence: 'claim' },
      // A cancel flag does not fence a later report: the attempt is still this node's.
      { assignment: cancelledEnd.assignment, report: exited(cancelledEnd.base.id, 0), fence: 'end' },
      { assignment: ending.assignment, report: exited(ending.base.id, 0), fence: 'end' },
    ]);
    expect(txns.mock.calls.length).toBe(2);
    txns.mockRestore();
    expect(outcomes.map((o) => o.outcome)).toEqual(['written', 'fenced', 'changed', 'written', 'written']);
    expect(outcomes[2].outcome === 'changed' && outcomes[2].assignment.value.cancel).toBeDefined();
    expect((await store.getReport(NODE, fine.base.id))?.value.state).toBe('Running');
    expect(await store.getReport(NODE, gone.base.id)).toBeUndefined();
    expect(await store.getReport(NODE, cancelled.base.id)).toBeUndefined();
    expect((await store.getReport(NODE, cancelledEnd.base.id))?.value.state).toBe('Ended');
    expect((await store.getReport(NODE, ending.base.id))?.value.state).toBe('Ended');
    // All of them fine: one transaction.
    const again = await placed(store);
    const one = vi.spyOn(store.client.kv, 'txn');
    expect(await store.writeReports([{ assignment: again.assignment, report: running(again.base.id), fence: 'claim' }, { assignment: fine.assignment, report: exited(fine.base.id, 0), fence: 'end' }])).toEqual([{ outcome: 'written' }, { outcome: 'written' }]);
    expect(one.mock.calls.length).toBe(1);
    one.mockRestore();
  });

  it('a report never rewrites the spec, and one of another attempt changes nothing', () => {
    const job: Job = { ...makeJob(), state: 'Running', node: NODE, attempt: 2, startedAt: 1 };
    const ended = exited(job.id, 0);
    expect(foldReport(job, ended, NODE, DEFAULT_RETRY_POLICY)).toBeUndefined(); // attempt 1's report
    const next = foldReport(job, { ...ended, attempt: 2 }, NODE, DEFAULT_RETRY_POLICY);
    expect(next).toMatchObject({ state: 'Succeeded', command: job.command, env: job.env, kind: job.kind });
    const long = foldReport(job, { ...ended, attempt: 2, end: { ...ended.end!, result: { type: 'exited', exitCode: 3, detail: 'x'.repeat(5000) } } }, NODE, DEFAULT_RETRY_POLICY);
    expect(long?.reason?.length).toBeLessThanOrEqual(1025);
  });
});
