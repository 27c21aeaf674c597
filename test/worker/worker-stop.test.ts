import { describe, expect, it } from 'vitest';
import { TEST_IMAGE } from '../harness/docker.js';
import {
  assignmentOf,
  containersOf,
  dockerWorkerSuite,
  readLogs,
  runningContainer,
  submitAndPlace,
  waitFor,
  waitForState,
} from './helpers.js';

const FINAL = ['Succeeded', 'Failed', 'Cancelled'] as const;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('worker: stopping runs (timeout, cancel grace)', () => {
  const suite = dockerWorkerSuite('worker-stop');
  const start = suite.start;

  it('stops a container that outlives its timeout (TERM, grace, KILL) and fails it with reason Timeout', async () => {
    const { store, worker } = await start({ stopGraceMs: 1000 });
    const t0 = Date.now();
    // `sleep` as PID 1 ignores SIGTERM: only the SIGKILL after the grace ends it.
    const id = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, args: ['sleep', '60'] }, [], { timeoutMs: 1500 });
    const job = await waitForState(store, id, [...FINAL], 15_000);
    const elapsed = Date.now() - t0;
    expect(job.state).toBe('Failed');
    expect(job.reason).toBe('Timeout: ran longer than 1.5s');
    expect(job.history).toEqual([expect.objectContaining({ attempt: 1, state: 'Failed', failure: 'timeout', exitCode: 137 })]);
    // Recorded only once the container is gone.
    expect(await containersOf(suite.docker, id)).toHaveLength(0);
    expect(await assignmentOf(store, worker.nodeId, id)).toBeUndefined();
    console.log(`timeout 1.5 s + grace 1 s: Failed after ${elapsed} ms`);
    expect(elapsed).toBeGreaterThanOrEqual(2500);
    expect(elapsed).toBeLessThan(8000);
  });

  it('retries a timed-out run under the job\'s retries', async () => {
    const { store, worker } = await start({ stopGraceMs: 1000 });
    const id = await submitAndPlace(store, worker.nodeId, { shell: 'sleep 30' }, [], { timeoutMs: 300, retries: 1 });
    const job = await waitForState(store, id, ['Pending', ...FINAL], 10_000);
    expect(job).toMatchObject({ state: 'Pending', failureCount: 1 });
    expect(job.reason).toMatch(/^Timeout: ran longer than 300ms; retry 1 of 1 in \d\.\ds$/);
    expect(job.retryAt).toBeGreaterThan(Date.now() - 5000);
    expect(job.history).toEqual([expect.objectContaining({ failure: 'timeout', exitCode: 143 })]);
  });

  it('honours a cancel\'s grace: SIGTERM, the grace, then SIGKILL; Cancelled only once the container is gone', async () => {
    const { store, worker } = await start();
    const id = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, cmd: 'trap "" TERM; echo ready; sleep 60' });
    await runningContainer(suite.docker, id);
    await waitFor('the job to be ready', async () => ((await readLogs(store, id)).stdout === 'ready\n' ? true : undefined));
    const t0 = Date.now();
    await store.cancelJob(id, 2000);
    // TERM is ignored: within the grace the container still runs and the job is not yet recorded.
    await sleep(1200);
    expect((await containersOf(suite.docker, id)).map((c) => c.State)).toEqual(['running']);
    expect((await store.getJob(id))?.value.state).toBe('Running');
    const job = await waitForState(store, id, [...FINAL], 15_000);
    const elapsed = Date.now() - t0;
    expect(job).toMatchObject({ state: 'Cancelled', reason: 'cancelled by user', exitCode: 137 });
    expect(await containersOf(suite.docker, id)).toHaveLength(0);
    expect(await assignmentOf(store, worker.nodeId, id)).toBeUndefined();
    console.log(`cancel with 2 s grace of a TERM-ignoring container: Cancelled after ${elapsed} ms`);
    expect(elapsed).toBeGreaterThanOrEqual(2000);
    expect(elapsed).toBeLessThan(7000);
  });
});
