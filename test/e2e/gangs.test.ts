import { describe, expect, it } from 'vitest';
import { buildJobSpec } from '../../pkg/model/index.js';
import { clusterSuite, readLogs, submitGang, submitJob, waitFor } from '../worker/helpers.js';

describe('gangs through etcd: all or nothing', () => {
  const suite = clusterSuite('gangs');

  it('a gang of 4 x 2 GPUs waits holding nothing on 6 free GPUs, and starts all 4 at once when 8 are free', async () => {
    const cluster = await suite.start({ gpus: '8', cpu: '16' });
    const { store, worker } = cluster;
    await cluster.startMaster();

    const blocker = await submitJob(store, { shell: 'sleep 60', gpu: 2 });
    await waitFor('the blocker to run', async () => ((await store.requireJob(blocker.id)).value.state === 'Running' ? true : undefined));

    const spec = buildJobSpec({ shell: 'echo "$TITAN_RANK/$TITAN_WORLD_SIZE $TITAN_PEERS"', gpu: 2 });
    const jobs = await submitGang(store, spec, 4);
    const ids = jobs.map((j) => j.id);

    const waiting = await waitFor('the gang to say why it waits', async () => {
      const all = await Promise.all(ids.map(async (id) => (await store.requireJob(id)).value));
      return all.every((j) => j.reason?.startsWith('gang waits')) ? all : undefined;
    });
    expect(waiting.every((j) => j.state === 'Pending')).toBe(true);
    const held = (await store.listAssignments()).items.map((i) => i.value.jobId);
    expect(held.filter((id) => ids.includes(id))).toEqual([]);

    await store.cancelJob(blocker.id, 500);
    const finished = await waitFor(
      'the gang to finish',
      async () => {
        const all = await Promise.all(ids.map(async (id) => (await store.requireJob(id)).value));
        return all.every((j) => j.state === 'Succeeded') ? all : undefined;
      },
      30_000,
    );
    // One transaction placed all four: they share its revision in their scheduled state.
    expect(new Set(finished.map((j) => j.scheduledAt)).size).toBe(1);
    expect(finished.map((j) => j.gpuDevices?.length)).toEqual([2, 2, 2, 2]);
    const outputs = await Promise.all(ids.map(async (id) => (await readLogs(store, id)).stdout.trim()));
    const host = worker.config.hostname ?? '';
    outputs.forEach((line, rank) => {
      const [world, peers] = line.split(' ');
      expect(world).toBe(`${rank}/4`);
      expect(peers.split(',')).toHaveLength(4);
      if (host) expect(peers).toContain(host);
    });
  }, 90_000);

  it('restarts the whole gang when one replica fails', async () => {
    const cluster = await suite.start({ gpus: '4', cpu: '16' });
    const { store } = cluster;
    await cluster.startMaster();
    // Attempt 1: replica 1 dies; replica 0 would run for a minute. Attempt 2: both finish.
    const script =
      'if [ "$TITAN_ATTEMPT" = 1 ]; then if [ "$TITAN_RANK" = 1 ]; then sleep 1; exit 1; fi; trap "exit 143" TERM; sleep 60 & wait; fi; echo "attempt $TITAN_ATTEMPT"';
    const spec = buildJobSpec({ shell: script, gpu: 1, retries: 2 });
    const jobs = await submitGang(store, spec, 2);
    const ids = jobs.map((j) => j.id);

    const finished = await waitFor(
      'the gang to finish its second attempt',
      async () => {
        const all = await Promise.all(ids.map(async (id) => (await store.requireJob(id)).value));
        return all.every((j) => j.state === 'Succeeded') ? all : undefined;
      },
      60_000,
    );
    expect(finished.map((j) => j.attempt)).toEqual([2, 2]);
    expect(finished[0].history?.[0]).toMatchObject({ reason: 'Gang restart: replica 1 failed' });
    expect(finished[1].history?.[0]).toMatchObject({ state: 'Failed' });
    expect(finished[1].failureCount).toBe(1);
    expect(finished[0].failureCount ?? 0).toBe(0);
    // The restarted replicas were placed together again.
    expect(finished[0].scheduledAt).toBe(finished[1].scheduledAt);
  }, 90_000);

  it('fails the gang when a replica fails for good: the other replicas are cancelled', async () => {
    const cluster = await suite.start({ gpus: '4', cpu: '16' });
    const { store } = cluster;
    await cluster.startMaster();
    const script = 'if [ "$TITAN_RANK" = 1 ]; then sleep 1; exit 3; fi; trap "exit 143" TERM; sleep 60 & wait';
    const spec = buildJobSpec({ shell: script, gpu: 1 });
    const jobs = await submitGang(store, spec, 2);
    const [rank0, rank1] = await waitFor(
      'the gang to end',
      async () => {
        const all = await Promise.all(jobs.map(async (j) => (await store.requireJob(j.id)).value));
        return all.every((j) => ['Failed', 'Cancelled', 'Succeeded'].includes(j.state)) ? all : undefined;
      },
      30_000,
    );
    expect(rank1).toMatchObject({ state: 'Failed', exitCode: 3 });
    expect(rank0.state).toBe('Cancelled');
    expect(rank0.reason).toMatch(/^gang failed: replica 1 failed/);
  }, 60_000);
});
