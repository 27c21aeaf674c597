import { describe, expect, it } from 'vitest';
import { records } from '../../pkg/store/index.js';
import { containerEvents, gatedCmd, openGate, TEST_IMAGE } from '../harness/docker.js';
import { containersOf, dockerWorkerSuite, placeJobs, readLogs, submitAndPlace, submitJob, waitFor, waitForState } from './helpers.js';

const FINAL = ['Succeeded', 'Failed', 'Cancelled'] as const;

/** Holds until the test opens its gate (openGate), then exits 0. */
const GATED_CMD = gatedCmd();

describe('worker: docker jobs', () => {
  const suite = dockerWorkerSuite('worker-docker');
  const start = suite.start;


  it('runs a container to Succeeded and stores its output', async () => {
    const { store, worker } = await start();
    const node = await store.get(store.keys.node(worker.nodeId), records.node);
    expect(node?.value.executors).toEqual(['docker', 'shell']);
    const id = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, cmd: 'echo hello from $TITAN_JOB_ID; echo note >&2' });
    const job = await waitForState(store, id, [...FINAL]);
    expect(job).toMatchObject({ state: 'Succeeded', exitCode: 0 });
    const logs = await readLogs(store, id);
    expect(logs.stdout).toBe(`hello from ${id}\n`);
    expect(logs.stderr).toBe('note\n');
    // Removed once its output was read.
    expect(await containersOf(suite.docker, id)).toHaveLength(0);
  });

  it('records a failing container with its exit code and stderr', async () => {
    const { store, worker } = await start();
    const id = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, cmd: 'echo err >&2; exit 3' });
    const job = await waitForState(store, id, [...FINAL]);
    expect(job).toMatchObject({ state: 'Failed', exitCode: 3, reason: 'exited with code 3' });
    expect((await readLogs(store, id)).stderr).toBe('err\n');
  });

  it('creates the container with labels, limits and env from the job; a cancel stops and removes it', async () => {
    const { store, worker } = await start();
    const id = await submitAndPlace(store, worker.nodeId, {
      image: TEST_IMAGE,
      args: ['sleep', '30'],
      cpu: '250m',
      memory: '32Mi',
      env: ['GREETING=hi'],
    });
    await waitForState(store, id, ['Running']);
    const [summary] = await waitFor('the container', async () => {
      const list = await containersOf(suite.docker, id);
      return list.length > 0 && list[0].State === 'running' ? list : undefined;
    });
    const info = await suite.docker.getContainer(summary.Id).inspect();
    expect(info.Name).toBe(`/titan-${id}-1`);
    expect(info.Config.Labels).toMatchObject({ 'titan.job': id, 'titan.attempt': '1', 'titan.node': worker.nodeId });
    expect(info.HostConfig.NanoCpus).toBe(250 * 1e6);
    expect(info.HostConfig.Memory).toBe(32 * 2 ** 20);
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.Config.Env).toEqual(expect.arrayContaining(['GREETING=hi', `TITAN_JOB_ID=${id}`, 'TITAN_ATTEMPT=1', `TITAN_NODE_ID=${worker.nodeId}`]));
    expect(info.Config.Cmd).toEqual(['sleep', '30']);

    await store.cancelJob(id, 1000);
    const job = await waitForState(store, id, [...FINAL], 15_000);
    expect(job).toMatchObject({ state: 'Cancelled', reason: 'cancelled by user' });
    expect(await containersOf(suite.docker, id)).toHaveLength(0);
  });

  it('fails a GPU job with a clear reason on an engine without the NVIDIA runtime, and keeps serving', async () => {
    const { store, worker } = await start();
    const gpuJob = await submitJob(store, { image: TEST_IMAGE, cmd: 'true', gpu: 2 });
    await placeJobs(store, worker.nodeId, [gpuJob.id], ['0', '1']);
    const failed = await waitForState(store, gpuJob.id, [...FINAL]);
    expect(failed.state).toBe('Failed');
    expect(failed.reason).toMatch(/^this node's Docker engine cannot run GPU containers \(no NVIDIA runtime\): .+/);
    expect(failed.exitCode).toBeUndefined();
    expect((await readLogs(store, gpuJob.id)).stderr).toContain('cannot run GPU containers');
    expect(await containersOf(suite.docker, gpuJob.id)).toHaveLength(0);

    const next = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, cmd: 'echo still here' });
    expect(await waitForState(store, next, [...FINAL])).toMatchObject({ state: 'Succeeded' });
    expect((await readLogs(store, next)).stdout).toBe('still here\n');
  });

  it('fails a job whose image cannot be pulled with the registry message', async () => {
    const { store, worker } = await start();
    const id = await submitAndPlace(store, worker.nodeId, { image: 'localhost:1/titan-missing:latest', cmd: 'true' });
    const job = await waitForState(store, id, [...FINAL]);
    expect(job.state).toBe('Failed');
    expect(job.reason).toMatch(/^image pull failed: .+/);
    expect(job.reason).not.toContain('HTTP code');
  });

  it('leaves a running container alone when stopped without stopJobs', async () => {
    const { store, worker } = await start();
    const id = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, args: ['sleep', '30'] });
    await waitForState(store, id, ['Running']);
    const running = await waitFor('the container', async () => (await containersOf(suite.docker, id)).find((c) => c.State === 'running'));
    const stopping = Date.now();
    await worker.stop();
    // The engine's own log, not a look after a pause: nothing was done to the container while the worker stopped.
    expect((await containerEvents(suite.docker, running.Id, stopping)).map((e) => e.Action)).toEqual([]);
    const [container] = await containersOf(suite.docker, id);
    expect(container?.State).toBe('running');
    expect((await store.getJob(id))?.value.state).toBe('Running');
  });

  it('runs 50 containers at once', async () => {
    const { store, worker } = await start();
    // One deadline for the whole test, a safety net only: every step waits for an event, not for a time.
    const deadline = Date.now() + 600_000;
    const left = (): number => Math.max(1, deadline - Date.now());
    // Each container holds until the test opens its gate: all 50 are running at one moment however slow the
    // machine is, where containers that slept a fixed time could end before the last one started.
    const jobs = await Promise.all(Array.from({ length: 50 }, () => submitJob(store, { image: TEST_IMAGE, cmd: GATED_CMD })));
    const ids = jobs.map((j) => j.id);
    const t0 = Date.now();
    await placeJobs(store, worker.nodeId, ids);
    const containers = await waitFor(
      'all 50 jobs Running, each in a running container',
      async () => {
        const { items } = await store.listJobs();
        const mine = items.filter((j) => ids.includes(j.value.id));
        const ended = mine.find((j) => FINAL.some((s) => s === j.value.state));
        if (ended) throw new Error(`job ${ended.value.id} ended before its gate opened: ${JSON.stringify(ended.value)}`);
        if (mine.length !== 50 || mine.some((j) => j.value.state !== 'Running')) return undefined;
        const running = await suite.docker.listContainers({ filters: { label: [`titan.node=${worker.nodeId}`], status: ['running'] } });
        return running.length === 50 ? running : undefined;
      },
      left(),
      250,
    );
    const allRunningAfter = Date.now() - t0;
    expect(new Set(containers.map((c) => c.Labels['titan.job']))).toEqual(new Set(ids));
    const released = Date.now();
    await Promise.all(containers.map((c) => openGate(suite.docker, c.Id)));
    const done = await waitFor(
      'all 50 jobs to finish',
      async () => {
        const mine = (await store.listJobs()).items.filter((j) => ids.includes(j.value.id));
        return mine.every((j) => FINAL.some((s) => s === j.value.state)) ? mine.map((j) => j.value) : undefined;
      },
      left(),
      250,
    );
    console.log(`50 containers: all Running ${allRunningAfter} ms after placement, all ended ${Date.now() - released} ms after their gates opened`);
    expect(done.map((j) => j.state)).toEqual(Array(50).fill('Succeeded'));
    expect(done.every((j) => j.exitCode === 0)).toBe(true);
    // Every job started before any gate opened and ended after it: they ran together, not in turn.
    expect(Math.max(...done.map((j) => j.startedAt ?? Infinity))).toBeLessThanOrEqual(released);
    expect(Math.min(...done.map((j) => j.finishedAt ?? 0))).toBeGreaterThanOrEqual(released);
    // Containers are removed before the end is reported.
    expect(await suite.docker.listContainers({ all: true, filters: { label: [`titan.node=${worker.nodeId}`] } })).toHaveLength(0);
  }, 660_000);

  it('caps a job\'s log and marks the truncation', async () => {
    const { store, worker } = await start({ maxLogBytes: 4096, logChunkBytes: 1024 });
    const id = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, cmd: 'yes 0123456789 | head -c 100000' });
    const job = await waitForState(store, id, [...FINAL]);
    expect(job).toMatchObject({ state: 'Succeeded', exitCode: 0 });
    const logs = await readLogs(store, id);
    expect(logs.stdout).toHaveLength(4096);
    expect(logs.stdout.startsWith('0123456789\n0123456789\n')).toBe(true);
    expect(logs.entries[logs.entries.length - 1]).toEqual({ stream: 'stderr', data: '[titan] log truncated: output exceeded 4KiB\n' });
    expect(logs.seqs).toEqual([...Array(logs.seqs.length).keys()]);
    expect(logs.seqs.length).toBeGreaterThanOrEqual(4);
  });
});
