import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RunLog } from '../../internal/worker/run-log.js';
import { writeEndReport, type EndReportWriter } from '../../internal/worker/run-report.js';
import { ReportBatcher } from '../../internal/worker/report-batcher.js';
import { NO_CAUSES, type Assignment, type RunReport } from '../../pkg/model/index.js';
import { encode, Store, txnOp, type Versioned } from '../../pkg/store/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { nodeRecord } from '../harness/records.js';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.js';
import { assignmentOf, placeJobs, submitJob } from './helpers.js';

/**
 * The end of a run as the worker writes it (run-report.ts, run-log.ts)
 * against a real etcd, reachable or cut off through a TCP proxy: how long a
 * write is tried, and when it gives up to the journal.
 */
const ctx = etcdSuite('worker-end-report');
const NODE = 'report-node';
const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

let proxy: TcpProxy | undefined;
let cutOff: Store | undefined;
afterEach(async () => {
  cutOff?.close();
  await proxy?.cut();
  proxy = undefined;
  cutOff = undefined;
});

async function placed(): Promise<Versioned<Assignment>> {
  const { store } = ctx;
  await store.txn([], [txnOp.put(store.keys.node(NODE), encode(nodeRecord(NODE)))]);
  const job = await submitJob(store, { shell: 'true' });
  await placeJobs(store, NODE, [job.id]);
  const assignment = await assignmentOf(store, NODE, job.id);
  if (!assignment) throw new Error('no assignment');
  return assignment;
}

function ended(assignment: Versioned<Assignment>): RunReport {
  const { jobId, attempt } = assignment.value;
  return { jobId, attempt, state: 'Ended', end: { result: { type: 'exited', exitCode: 0 }, causes: NO_CAUSES, finishedAt: Date.now() } };
}

/** A store that reaches etcd through a proxy the test can cut. */
async function storeViaProxy(): Promise<{ store: Store; proxy: TcpProxy }> {
  proxy = await startTcpProxy(ctx.etcd.endpoints);
  cutOff = new Store({ endpoints: [proxy.endpoint], prefix: ctx.prefix });
  return { store: cutOff, proxy };
}

function writer(store: Store, assignment: Versioned<Assignment>, patch: Partial<EndReportWriter> = {}): EndReportWriter {
  return { reports: new ReportBatcher(store), assignment, logger, shuttingDown: false, letGo: () => false, ...patch };
}

describe('the end report of a run', () => {
  it('is written once etcd answers, and is refused for an assignment that was re-created', async () => {
    const assignment = await placed();
    expect(await writeEndReport(ended(assignment), writer(ctx.store, assignment))).toBe('reported');
    expect((await ctx.store.getReport(NODE, assignment.value.jobId))?.value).toMatchObject({ state: 'Ended', attempt: 1 });

    const again = await placed();
    await ctx.store.txn([], [txnOp.del(again.key)]);
    await ctx.store.txn([], [txnOp.put(again.key, encode(again.value))]);
    expect(await writeEndReport(ended(again), writer(ctx.store, again))).toBe('fenced');
    expect(await ctx.store.getReport(NODE, again.value.jobId)).toBeUndefined();
  });

  it('keeps trying while etcd is away for a while, and gets through once it is back', async () => {
    const assignment = await placed();
    const { store, proxy: relay } = await storeViaProxy();
    await relay.cut();
    const writing = writeEndReport(ended(assignment), writer(store, assignment));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await relay.restore();
    expect(await writing).toBe('reported');
    expect((await ctx.store.getReport(NODE, assignment.value.jobId))?.value.state).toBe('Ended');
  });

  it('gives up within about 2 s when the worker is stopping, and after one try when the worker let the run go', async () => {
    const assignment = await placed();
    const { store, proxy: relay } = await storeViaProxy();
    await relay.cut();
    let t0 = Date.now();
    expect(await writeEndReport(ended(assignment), writer(store, assignment, { shuttingDown: true }))).toBe('unwritten');
    const stopping = Date.now() - t0;
    t0 = Date.now();
    let tries = 0;
    const letGo = (): boolean => (tries++, true);
    expect(await writeEndReport(ended(assignment), writer(store, assignment, { letGo }))).toBe('unwritten');
    const detached = Date.now() - t0;
    console.log(`end report with etcd cut off: gave up after ${stopping} ms (stopping), ${detached} ms (detached)`);
    expect(tries).toBe(1);
    expect(stopping).toBeGreaterThanOrEqual(1900);
    expect(stopping).toBeLessThan(6000);
    expect(await ctx.store.getReport(NODE, assignment.value.jobId)).toBeUndefined();
  });

  it('reads where the stored log ends until etcd answers, or until the run is stopped', async () => {
    const assignment = await placed();
    const { store, proxy: relay } = await storeViaProxy();
    const log = (s: Store): RunLog =>
      new RunLog({ store: s, assignment, config: { nodeId: NODE, maxLogBytes: 1 << 20, jobLogBudgetBytes: 4 << 20, logChunkBytes: 1024, logFlushMs: 20 }, logger, keepTrying: () => true, onFenced: () => undefined });
    expect(await log(ctx.store).storedEnd(() => false)).toEqual({ nextSeq: 0, truncated: false });

    await relay.cut();
    let stopped = false;
    setTimeout(() => (stopped = true), 1500);
    expect(await log(store).storedEnd(() => stopped)).toBeUndefined();

    const reading = log(store).storedEnd(() => false);
    setTimeout(() => void relay.restore(), 1500);
    expect(await reading).toEqual({ nextSeq: 0, truncated: false });
  });
});
