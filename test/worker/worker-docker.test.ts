import { describe, expect, it } from 'vitest';
import { records } from '../../pkg/store/index.js';
import { TEST_IMAGE } from '../harness/docker.js';
import { containersOf, dockerWorkerSuite, placeJobs, readLogs, submitAndPlace, submitJob, waitFor, waitForState } from './helpers.js';

const FINAL = ['Succeeded', 'Failed', 'Cancelled'] as const;

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
    await waitFor('the container', async () => ((await containersOf(suite.docker, id)).some((c) => c.State === 'running') ? true : undefined));
    await worker.stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const [container] = await containersOf(suite.docker, id);
    expect(container?.State).toBe('running');
    expect((await store.getJob(id))?.value.state).toBe('Running');
  });

  it('runs 50 containers at once', async () => {
    const { store, worker } = await start();
    const jobs = await Promise.all(Array.from({ length: 50 }, () => submitJob(store, { image: TEST_IMAGE, args: ['sleep', '3'] })));
    const ids = jobs.map((j) => j.id);
    const t0 = Date.now();
    await placeJobs(store, worker.nodeId, ids);
    // Watch the states: every job must be seen Running, and many at the same moment.
    let peakRunning = 0;
    let peakContainers = 0;
    const seenRunning = new Set<string>();
    const done = await waitFor(
      'all 50 jobs to finish',
      async () => {
        const { items } = await store.listJobs();
        const mine = items.filter((j) => ids.includes(j.value.id));
        const running = mine.filter((j) => j.value.state === 'Running');
        for (const j of running) seenRunning.add(j.value.id);
        peakRunning = Math.max(peakRunning, running.length);
        const containers = await suite.docker.listContainers({ filters: { label: [`titan.node=${worker.nodeId}`], status: ['running'] } });
        peakContainers = Math.max(peakContainers, containers.length);
        return mine.every((j) => j.value.state === 'Succeeded' || j.value.state === 'Failed' || j.value.state === 'Cancelled') ? mine : undefined;
      },
      90_000,
      100,
    );
    const elapsed = Date.now() - t0;
    expect(done.map((j) => j.value.state)).toEqual(Array(50).fill('Succeeded'));
    expect(done.every((j) => j.value.exitCode === 0 && (j.value.startedAt ?? 0) > 0)).toBe(true);
    // Every job ran (startedAt is set only on Running), and they overlapped rather than ran in turn.
    const latestStart = Math.max(...done.map((j) => j.value.startedAt ?? 0));
    const earliestEnd = Math.min(...done.map((j) => j.value.finishedAt ?? 0));
    console.log(
      `50 containers: ${elapsed} ms in total; peak ${peakRunning} jobs Running and ${peakContainers} containers running at once; ` +
        `${seenRunning.size} seen Running; last claim ${latestStart - t0} ms after placement`,
    );
    expect(seenRunning.size).toBe(50);
    expect(peakRunning).toBe(50);
    expect(peakContainers).toBeGreaterThanOrEqual(10);
    expect(latestStart).toBeLessThan(earliestEnd + 3000 * 2);
    expect(await suite.docker.listContainers({ all: true, filters: { label: [`titan.node=${worker.nodeId}`] } })).toHaveLength(0);
  }, 120_000);

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
