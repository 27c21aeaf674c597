import fs from 'node:fs';
import { records } from '../../pkg/store/index.js';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Store, txnOp } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { SHELL_NOT_REATTACHED_REASON } from '../../pkg/model/index.js';
import { readJournal } from '../../internal/worker/run-journal.js';
import { assignmentOf, placeJobs, readLogs, startTestWorker, submitAndPlace, submitJob, waitFor, waitForState, type TestWorker } from './helpers.js';

describe('worker: shell jobs and registration', () => {
  let etcd: EtcdServer;
  let tw: TestWorker | undefined;

  beforeAll(async () => {
    etcd = await startEtcd({ name: 'worker-shell' });
  });
  afterEach(async () => {
    await tw?.stop();
    tw = undefined;
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  const start = async (labels: string[] = []): Promise<TestWorker> => {
    tw = await startTestWorker(etcd.endpoints, { docker: 'off', label: labels });
    return tw;
  };

  it('runs a shell job to Succeeded with its output and TITAN_* env in the logs', async () => {
    const { store, worker } = await start();
    const id = await submitAndPlace(store, worker.nodeId, { shell: 'echo "out $TITAN_JOB_ID $TITAN_ATTEMPT $TITAN_NODE_ID"; echo err >&2' });
    const job = await waitForState(store, id, ['Succeeded', 'Failed', 'Cancelled']);
    expect(job).toMatchObject({ state: 'Succeeded', exitCode: 0, node: worker.nodeId });
    expect(job.startedAt).toBeGreaterThan(0);
    expect(job.finishedAt).toBeGreaterThanOrEqual(job.startedAt ?? 0);
    const logs = await readLogs(store, id);
    expect(logs.stdout).toBe(`out ${id} 1 ${worker.nodeId}\n`);
    expect(logs.stderr).toBe('err\n');
    // The final state released the assignment.
    expect(await assignmentOf(store, worker.nodeId, id)).toBeUndefined();
  });

  it('records a failing shell job with its exit code and stderr', async () => {
    const { store, worker } = await start();
    const id = await submitAndPlace(store, worker.nodeId, { shell: 'echo partial; echo boom >&2; exit 7' });
    const job = await waitForState(store, id, ['Succeeded', 'Failed', 'Cancelled']);
    expect(job).toMatchObject({ state: 'Failed', exitCode: 7, reason: 'exited with code 7' });
    const logs = await readLogs(store, id);
    expect(logs.stdout).toBe('partial\n');
    expect(logs.stderr).toBe('boom\n');
  });

  it('cancels a running shell job by signalling its process group', async () => {
    const { store, worker } = await start();
    // The sleep outlasts any deadline here: a job that ends before it was stopped by the signal, at any load.
    const id = await submitAndPlace(store, worker.nodeId, { shell: 'echo started; sleep 600 & wait' });
    await waitFor('output', async () => ((await readLogs(store, id)).stdout.includes('started') ? true : undefined));
    const t0 = Date.now();
    await store.cancelJob(id, 1000);
    const job = await waitForState(store, id, ['Succeeded', 'Failed', 'Cancelled'], 120_000);
    expect(job).toMatchObject({ state: 'Cancelled', reason: 'cancelled by user' });
    expect(Date.now() - t0).toBeLessThan(120_000);
  }, 180_000);

  /** A shell job that records its pid, so the test can see whether it still runs. */
  const tempDirs: string[] = [];
  afterAll(() => tempDirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));
  const pidFile = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-worker-test-'));
    tempDirs.push(dir);
    return path.join(dir, 'pid');
  };
  const readPid = (file: string): Promise<number> =>
    waitFor('the job to write its pid', async () => {
      const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
      return text ? Number(text) : undefined;
    });
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const groupAlive = (pid: number): boolean => alive(-pid);

  it('stops a run whose assignment was taken away, and records nothing for it', async () => {
    const { store, worker } = await start();
    const file = pidFile();
    const id = await submitAndPlace(store, worker.nodeId, { shell: `echo $$ > ${file}; exec sleep 30` });
    const pid = await readPid(file);
    expect(alive(pid)).toBe(true);
    await waitForState(store, id, ['Running']);
    const journaled = (): boolean => readJournal(tw?.config.stateDir ?? '').some((r) => r.jobId === id && r.attempt === 1);
    await waitFor('the run to journal its start', async () => (journaled() ? true : undefined), 30_000);
    // What the master does when it requeues a job from this node.
    await store.txn([], [txnOp.del(store.keys.assignment(worker.nodeId, id))]);
    await waitFor('the process to end', async () => (alive(pid) ? undefined : true), 10_000);
    // The run is over once it dropped its journal record (its last step, after it would have reported an end).
    await waitFor('the run to drop its journal record', async () => (journaled() ? undefined : true), 30_000);
    // The node reported nothing more of it: the job stays as the fold of its start left it.
    expect((await store.getJob(id))?.value.state).toBe('Running');
    expect((await store.getReport(worker.nodeId, id))?.value.state).toBe('Running');
  });

  it('leaves runs going when stopped without stopJobs', async () => {
    const { store, worker } = await start();
    const file = pidFile();
    const id = await submitAndPlace(store, worker.nodeId, { shell: `echo $$ > ${file}; exec sleep 30` });
    const pid = await readPid(file);
    await waitForState(store, id, ['Running']);
    await worker.stop();
    try {
      expect(alive(pid)).toBe(true);
      expect((await store.getJob(id))?.value.state).toBe('Running');
      // Released passively: the node stays until its lease expires.
      expect(await store.get(store.keys.node(worker.nodeId), records.node)).toBeDefined();
    } finally {
      process.kill(-pid, 'SIGKILL');
    }
  });

  it('kills a shell run left by an earlier worker process and requeues it as lost with the node', async () => {
    const first = await start();
    const file = pidFile();
    // A child in the background too: the whole process group must go.
    const id = await submitAndPlace(first.store, first.worker.nodeId, { shell: `sleep 30 & echo $$ > ${file}; wait` });
    const pid = await readPid(file);
    await waitForState(first.store, id, ['Running']);
    await first.worker.stop();
    expect(alive(pid)).toBe(true);
    try {
      tw = await startTestWorker(etcd.endpoints, { docker: 'off', prefix: first.config.prefix, nodeId: first.config.nodeId });
      const job = await waitForState(tw.store, id, ['Pending', 'Failed', 'Succeeded', 'Cancelled']);
      expect(job.state).toBe('Pending');
      expect(job.reason).toBe(`NodeLost: ${SHELL_NOT_REATTACHED_REASON}; requeued (node-lost retry 1 of 3)`);
      expect(job.history).toEqual([expect.objectContaining({ attempt: 1, state: 'Failed', failure: 'node-lost', reason: SHELL_NOT_REATTACHED_REASON })]);
      expect(await assignmentOf(tw.store, first.config.nodeId, id)).toBeUndefined();
      await waitFor('the orphaned process group to die', async () => (groupAlive(pid) ? undefined : true), 5000);
      expect((await readLogs(tw.store, id)).stderr).toBe(`[titan] ${SHELL_NOT_REATTACHED_REASON}\n`);
    } finally {
      first.store.close();
      if (groupAlive(pid)) process.kill(-pid, 'SIGKILL');
    }
  });

  it('records a shell job killed from outside with kill -9 as exit 137, retried under its retries', async () => {
    const { store, worker } = await start();
    const file = pidFile();
    const id = await submitAndPlace(store, worker.nodeId, { shell: `echo $$ > ${file}; exec sleep 30` }, [], { retries: 1 });
    const pid = await readPid(file);
    await waitForState(store, id, ['Running']);
    process.kill(pid, 'SIGKILL');
    const retried = await waitForState(store, id, ['Pending', 'Failed', 'Succeeded', 'Cancelled']);
    expect(retried).toMatchObject({ state: 'Pending', failureCount: 1 });
    expect(retried.reason).toMatch(/^exited with code 137; retry 1 of 1 in \d\.\ds$/);
    expect(retried.history).toEqual([expect.objectContaining({ attempt: 1, state: 'Failed', exitCode: 137, failure: 'exit', reason: 'exited with code 137' })]);
    expect(await assignmentOf(store, worker.nodeId, id)).toBeUndefined();

    // Without retries left the same ending is final.
    const once = await submitAndPlace(store, worker.nodeId, { shell: `echo $$ > ${file}.2; exec sleep 30` });
    const pid2 = await readPid(`${file}.2`);
    await waitForState(store, once, ['Running']);
    process.kill(pid2, 'SIGKILL');
    expect(await waitForState(store, once, ['Pending', 'Failed', 'Succeeded', 'Cancelled'])).toMatchObject({
      state: 'Failed',
      exitCode: 137,
      reason: 'exited with code 137',
    });
  });

  it('claims each of many assignments placed in one transaction without reading for an earlier report', async () => {
    const { store, worker } = await start();
    const jobs = await Promise.all(Array.from({ length: 6 }, () => submitJob(store, { shell: 'true' })));
    const reads = vi.spyOn(Store.prototype, 'getReport');
    try {
      // One placement transaction: every assignment has the same create revision.
      await placeJobs(store, worker.nodeId, jobs.map((j) => j.id));
      for (const job of jobs) expect((await waitForState(store, job.id, ['Succeeded', 'Failed', 'Cancelled'])).state).toBe('Succeeded');
      expect(reads).not.toHaveBeenCalled();
    } finally {
      reads.mockRestore();
    }
  });

  it('registers capacity and labels, and vanishes at once when stopped', async () => {
    const { store, worker, config } = await start(['zone=eu-1', 'disk=ssd']);
    const node = await store.get(store.keys.node(worker.nodeId), records.node);
    expect(node?.value).toMatchObject({
      id: worker.nodeId,
      capacity: { cpu: 8000, memory: 16 * 2 ** 30, gpuMilli: 0 },
      labels: { zone: 'eu-1', disk: 'ssd' },
      executors: ['shell'],
      gpus: [],
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
    });
    expect(node?.value.registeredAt).toBeGreaterThan(0);
    // A running job is stopped and recorded when the worker stops with stopJobs.
    const id = await submitAndPlace(store, worker.nodeId, { shell: 'sleep 30' });
    await waitForState(store, id, ['Running']);
    await worker.stop({ stopJobs: true });
    expect(await store.get(store.keys.node(config.nodeId), records.node)).toBeUndefined();
    // Stopped by its node, not failed by itself: it goes back to the queue under the node-lost budget.
    // (as the master folds the node's report of the attempt's end)
    const job = await waitForState(store, id, ['Pending']);
    expect(job).toMatchObject({ state: 'Pending', nodeLostCount: 1 });
    expect(job?.history).toEqual([expect.objectContaining({ state: 'Failed', failure: 'node-lost', reason: 'worker stopped' })]);
  });
});
