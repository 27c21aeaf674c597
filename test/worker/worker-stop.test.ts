import { describe, expect, it } from 'vitest';
import { containerEvents, TEST_IMAGE, type DockerEvent } from '../harness/docker.js';
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
/** The engine's record of a signal sent to a container (`docker kill` / stop). */
const killWith = (signal: string) => (e: DockerEvent): boolean => e.Action === 'kill' && e.Actor.Attributes.signal === signal;

describe('worker: stopping runs (timeout, cancel grace)', () => {
  const suite = dockerWorkerSuite('worker-stop');
  const start = suite.start;

  /** When (ms, the engine's clock) the container got SIGTERM and SIGKILL since `since`, and started if that was after `since`. */
  const signalsOf = async (containerId: string | { label: string }, since: number): Promise<{ start?: number; term: number; kill: number }> => {
    const events = await containerEvents(suite.docker, containerId, since);
    const at = (e: DockerEvent | undefined): number | undefined => (e ? e.timeNano / 1e6 : undefined);
    const [start, term, kill] = [at(events.find((e) => e.Action === 'start')), at(events.find(killWith('15'))), at(events.find(killWith('9')))];
    if (term === undefined || kill === undefined) {
      throw new Error(`no TERM and KILL in the engine's events: ${JSON.stringify(events.map((e) => [e.Action, e.Actor.Attributes.signal]))}`);
    }
    return { ...(start !== undefined ? { start } : {}), term, kill };
  };

  it('stops a container that outlives its timeout (TERM, grace, KILL) and fails it with reason Timeout', async () => {
    const { store, worker } = await start({ stopGraceMs: 1000 });
    const t0 = Date.now();
    // `sleep` as PID 1 ignores SIGTERM: only the SIGKILL after the grace ends it.
    const id = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, args: ['sleep', '60'] }, [], { timeoutMs: 1500 });
    // The deadline is a safety net: a loaded engine takes seconds to create, start and remove a container.
    const job = await waitForState(store, id, [...FINAL], 240_000);
    const elapsed = Date.now() - t0;
    expect(job.state).toBe('Failed');
    expect(job.reason).toBe('Timeout: ran longer than 1.5s');
    expect(job.history).toEqual([expect.objectContaining({ attempt: 1, state: 'Failed', failure: 'timeout', exitCode: 137 })]);
    // Recorded only once the container is gone.
    expect(await containersOf(suite.docker, id)).toHaveLength(0);
    expect(await assignmentOf(store, worker.nodeId, id)).toBeUndefined();
    // Timed by the engine: TERM 1.5 s after the start, KILL 1 s after TERM (a timer may fire late, never early).
    const { start: started, term, kill } = await signalsOf({ label: `titan.job=${id}` }, t0);
    if (started === undefined) throw new Error('no start of the container in the engine\'s events');
    console.log(`timeout 1.5 s + grace 1 s: TERM ${Math.round(term - started)} ms after the start, KILL ${Math.round(kill - term)} ms after TERM; Failed after ${elapsed} ms`);
    expect(term - started).toBeGreaterThanOrEqual(1500 - 50);
    expect(term - started).toBeLessThan(1500 + 5000);
    expect(kill - term).toBeGreaterThanOrEqual(1000 - 50);
    expect(kill - term).toBeLessThan(1000 + 5000);
    expect(elapsed).toBeGreaterThanOrEqual(2500);
  }, 300_000);

  it('retries a timed-out run under the job\'s retries', async () => {
    const { store, worker } = await start({ stopGraceMs: 1000 });
    const id = await submitAndPlace(store, worker.nodeId, { shell: 'sleep 30' }, [], { timeoutMs: 300, retries: 1 });
    const job = await waitForState(store, id, ['Pending', ...FINAL], 60_000);
    expect(job).toMatchObject({ state: 'Pending', failureCount: 1 });
    expect(job.reason).toMatch(/^Timeout: ran longer than 300ms; retry 1 of 1 in \d\.\ds$/);
    // The first retry's backoff is 0.5 to 1 s (with jitter) from the attempt's end.
    const backoff = (job.retryAt ?? 0) - (job.history?.[0]?.finishedAt ?? 0);
    expect(backoff).toBeGreaterThanOrEqual(500);
    expect(backoff).toBeLessThanOrEqual(1000);
    expect(job.history).toEqual([expect.objectContaining({ failure: 'timeout', exitCode: 143 })]);
  });

  it('honours a cancel\'s grace: SIGTERM, the grace, then SIGKILL; Cancelled only once the container is gone', async () => {
    const { store, worker } = await start();
    const id = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, cmd: 'trap "" TERM; echo ready; sleep 60' });
    const container = await runningContainer(suite.docker, id, 1, 120_000);
    await waitFor('the job to be ready', async () => ((await readLogs(store, id)).stdout === 'ready\n' ? true : undefined));
    const t0 = Date.now();
    await store.cancelJob(id, 2000);
    // TERM is ignored: once the engine delivered it, the container still runs and the job is not yet recorded.
    await waitFor('the engine to send SIGTERM', async () => ((await containerEvents(suite.docker, container.Id, t0)).some(killWith('15')) ? true : undefined), 120_000);
    expect((await containersOf(suite.docker, id)).map((c) => c.State)).toEqual(['running']);
    expect((await store.getJob(id))?.value.state).toBe('Running');
    const job = await waitForState(store, id, [...FINAL], 240_000);
    const elapsed = Date.now() - t0;
    expect(job).toMatchObject({ state: 'Cancelled', reason: 'cancelled by user', exitCode: 137 });
    expect(await containersOf(suite.docker, id)).toHaveLength(0);
    expect(await assignmentOf(store, worker.nodeId, id)).toBeUndefined();
    // The grace, timed by the engine between the two signals it sent: KILL came 2 s after TERM (a timer may fire late, not early).
    const { term, kill } = await signalsOf(container.Id, t0);
    const graceMs = kill - term;
    console.log(`cancel with 2 s grace of a TERM-ignoring container: KILL ${Math.round(graceMs)} ms after TERM, Cancelled after ${elapsed} ms`);
    expect(graceMs).toBeGreaterThanOrEqual(2000 - 50);
    expect(graceMs).toBeLessThan(2000 + 5000);
    expect(elapsed).toBeGreaterThanOrEqual(2000);
  }, 300_000);
});
