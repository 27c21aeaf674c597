import fs from 'node:fs';
import { records } from '../../pkg/store/index.js';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { JobRun } from '../../internal/worker/job-run.js';
import { ReportBatcher } from '../../internal/worker/report-batcher.js';
import { readJournal, RunJournal } from '../../internal/worker/run-journal.js';
import type { Execution, Executor } from '../../internal/worker/executor.js';
import { DEFAULT_RETRY_POLICY, type Assignment, type Job } from '../../pkg/model/index.js';
import { encode, placedJob, txnOp, type Store, type Versioned } from '../../pkg/store/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { nodeRecord } from '../harness/records.js';
import { assignmentOf, placeJobs, submitJob } from './helpers.js';

/**
 * The worker's claim (JobRun: its Running report) against a real etcd, with
 * an executor that only records what it was asked to start: the node runs
 * the job the assignment carries and writes only reports under its own
 * prefix, and a cancel that came after the placement is still seen. No
 * Docker needed.
 */
const ctx = etcdSuite('worker-claim');
const NODE = 'claim-node';
const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Records every start (with the etcd calls made before it) and ends each run at once with exit 0. */
class RecordingExecutor implements Executor {
  readonly kind = 'shell' as const;
  readonly started: { job: Job; ranges: number; txns: number }[] = [];
  constructor(private readonly calls: { ranges: () => number; txns: () => number }) {}
  start(job: Job): Promise<Execution> {
    this.started.push({ job, ranges: this.calls.ranges(), txns: this.calls.txns() });
    return Promise.resolve({
      startedAt: Date.now(),
      handle: {},
      exited: Promise.resolve({ type: 'exited', exitCode: 0 }),
      stop: () => Promise.resolve(),
      release: () => Promise.resolve(),
      detach: () => undefined,
    });
  }
  abandon(): Promise<void> {
    return Promise.resolve();
  }
}

function countCalls(store: Store): { ranges: () => number; txns: () => number } {
  const range = vi.spyOn(store.client.kv, 'range');
  const txn = vi.spyOn(store.client.kv, 'txn');
  return { ranges: () => range.mock.calls.length, txns: () => txn.mock.calls.length };
}

async function registerNode(store: Store): Promise<void> {
  await store.txn([], [txnOp.put(store.keys.node(NODE), encode(nodeRecord(NODE)))]);
}

/** Runs one JobRun of `assignment` to its end, counting the etcd calls from its start; `phases` is its course, from its debug log. */
async function runClaim(
  store: Store,
  assignment: Versioned<Assignment>,
  options: { unreported?: boolean } = {},
): Promise<{ executor: RecordingExecutor; ranges: number; txns: number; journalReads: number; journalLeft: string[]; phases: string[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-claim-test-'));
  dirs.push(dir);
  const calls = countCalls(store);
  const journalReads = vi.spyOn(RunJournal.prototype, 'read');
  const executor = new RecordingExecutor(calls);
  const phases = ['claiming'];
  const phaseLog = pino({ level: 'debug' }, {
    write: (line: string) => {
      const entry = JSON.parse(line) as { msg?: string; to?: string };
      if (entry.msg === 'job run phase' && entry.to) phases.push(entry.to);
    },
  });
  const run = new JobRun(
    {
      store,
      reports: new ReportBatcher(store),
      executors: new Map([['shell', executor]]),
      journal: new RunJournal(dir, logger),
      policy: DEFAULT_RETRY_POLICY,
      config: { nodeId: NODE, maxLogBytes: 1 << 20, jobLogBudgetBytes: 4 << 20, logChunkBytes: 64 << 10, logFlushMs: 20, stopGraceMs: 1000 },
      logger: phaseLog,
    },
    assignment,
    options,
  );
  await run.done;
  expect(run.phase).toBe(phases[phases.length - 1]);
  const counts = { ranges: calls.ranges(), txns: calls.txns(), journalReads: journalReads.mock.calls.length, journalLeft: readJournal(dir).map((r) => `${r.jobId}.${r.attempt}`) };
  vi.restoreAllMocks();
  return { executor, phases, ...counts };
}

async function placedAssignment(store: Store, env: Record<string, string> = { GREETING: 'hi' }): Promise<Versioned<Assignment>> {
  await registerNode(store);
  const job = await submitJob(store, { shell: 'echo "$GREETING"', env: Object.entries(env).map(([k, v]) => `${k}=${v}`) });
  await placeJobs(store, NODE, [job.id]);
  const assignment = await assignmentOf(store, NODE, job.id);
  if (!assignment) throw new Error('no assignment');
  return assignment;
}

describe('worker claim from the assignment', () => {
  it('claims a fresh placement with one read and one fenced report, runs the job as placed, and reports its end', async () => {
    const { store } = ctx;
    const assignment = await placedAssignment(store);
    expect(placedJob(assignment).state).toBe('Scheduled');
    const { executor, journalReads, journalLeft, phases } = await runClaim(store, assignment);
    expect(executor.started).toHaveLength(1);
    expect(phases).toEqual(['claiming', 'starting', 'running', 'finishing', 'reporting', 'reported']);
    // The run journaled its start and end and removed the record, never reading back what it wrote.
    expect(journalReads).toBe(0);
    expect(journalLeft).toEqual([]);
    const [start] = executor.started;
    // Up to the start: a read of its own report (none), and the claim's one transaction.
    expect([start.ranges, start.txns]).toEqual([1, 1]);
    expect(start.job).toMatchObject({ id: assignment.value.jobId, node: NODE, attempt: 1, command: ['/bin/sh', '-c', 'echo "$GREETING"'], env: { GREETING: 'hi' } });
    // The node wrote no job record: only its report, which the master folds.
    const job = await store.requireJob(assignment.value.jobId);
    expect(job.value.state).toBe('Scheduled');
    const report = await store.getReport(NODE, assignment.value.jobId);
    expect(report?.value).toMatchObject({ attempt: 1, state: 'Ended', end: { result: { type: 'exited', exitCode: 0 }, causes: { cancel: false } } });
    expect(report?.value.startedAt).toBeGreaterThan(0);
  });

  it('claims an assignment the worker saw created (nothing can have reported on it yet) with no read at all', async () => {
    const { store } = ctx;
    const assignment = await placedAssignment(store);
    const { executor, phases } = await runClaim(store, assignment, { unreported: true });
    expect(phases).toEqual(['claiming', 'starting', 'running', 'finishing', 'reporting', 'reported']);
    expect([executor.started[0].ranges, executor.started[0].txns]).toEqual([0, 1]);
  });

  it('a cancel between placement and claim: the job is not started, whichever assignment the worker saw', async () => {
    const { store } = ctx;
    for (const seen of ['before the cancel', 'after the cancel'] as const) {
      const placed = await placedAssignment(store);
      await store.cancelJob(placed.value.jobId, 1000);
      const flagged = await store.get(placed.key, records.assignment);
      if (!flagged?.value.cancel) throw new Error('the cancel did not flag the assignment');
      const assignment = seen === 'before the cancel' ? placed : flagged;
      const { executor, phases } = await runClaim(store, assignment);
      expect(executor.started, seen).toEqual([]);
      expect(phases, seen).toEqual(['claiming', 'finishing', 'reporting', 'reported']);
      const report = await store.getReport(NODE, placed.value.jobId);
      expect(report?.value, seen).toMatchObject({ state: 'Ended', end: { result: { type: 'not-started' }, causes: { cancel: true } } });
      expect(report?.value.startedAt, seen).toBeUndefined();
    }
  });

  it('an assignment without a readable job copy: nothing runs, and the attempt is reported as failed to start', async () => {
    const { store } = ctx;
    await registerNode(store);
    const job = await submitJob(store, { shell: 'true' });
    const key = store.keys.assignment(NODE, job.id);
    const assignment: Assignment = { jobId: job.id, nodeId: NODE, attempt: 1, resources: job.resources, gpuDevices: [], assignedAt: Date.now() };
    await store.txn([], [txnOp.put(store.keys.job(job.id), encode({ ...job, state: 'Scheduled', node: NODE, attempt: 1 })), txnOp.put(key, encode(assignment))]);
    const placed = await store.get(key, records.assignment);
    if (!placed) throw new Error('no assignment');
    const { executor, phases } = await runClaim(store, placed);
    expect(executor.started).toEqual([]);
    expect(phases).toEqual(['claiming', 'reporting', 'reported']);
    expect((await store.getReport(NODE, job.id))?.value).toMatchObject({ state: 'Ended', end: { result: { type: 'start-failed', reason: expect.stringMatching(/could not be read/) } } });
  });
});

describe("the worker's report batcher", () => {
  it('writes the reports of runs made in one turn in one transaction, each fenced on its own, and one key at most once per transaction', async () => {
    const { store } = ctx;
    await registerNode(store);
    const jobs = await Promise.all(Array.from({ length: 20 }, () => submitJob(store, { shell: 'true' })));
    await placeJobs(store, NODE, jobs.map((j) => j.id));
    const assignments = await Promise.all(jobs.map(async (j) => (await assignmentOf(store, NODE, j.id))!));
    // One of them was taken from the node before its claim.
    await store.txn([], [txnOp.del(assignments[7].key)]);
    const batcher = new ReportBatcher(store);
    const txns = vi.spyOn(store.client.kv, 'txn');
    const running = (a: Versioned<Assignment>) => ({ jobId: a.value.jobId, attempt: 1, state: 'Running' as const, startedAt: 1 });
    const claims = await Promise.all(assignments.map((a) => batcher.write({ assignment: a, report: running(a), fence: 'claim' })));
    // The first write goes alone (a lone report waits for nothing); the rest share one, which fails on the taken one and is sent again without it.
    expect(txns.mock.calls.length).toBeLessThanOrEqual(4);
    expect(claims.filter((c) => c.outcome === 'written')).toHaveLength(19);
    expect(claims[7].outcome).toBe('fenced');
    // Two writes of one report key in one turn: both written, in two transactions, in order.
    txns.mockClear();
    const a = assignments[0];
    const [first, second] = await Promise.all([
      batcher.write({ assignment: a, report: { ...running(a), startedAt: 2 }, fence: 'end' }),
      batcher.write({ assignment: a, report: { ...running(a), startedAt: 3 }, fence: 'end' }),
    ]);
    expect([first.outcome, second.outcome]).toEqual(['written', 'written']);
    expect(txns.mock.calls.length).toBe(2);
    expect((await store.getReport(NODE, a.value.jobId))?.value.startedAt).toBe(3);
    txns.mockRestore();
  });
});
