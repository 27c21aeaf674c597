import { describe, expect, it } from 'vitest';
import { DEFAULT_CAP_ALLOWLIST, DEFAULT_PIDS_LIMIT } from '../../internal/worker/container-box.js';
import { newJobId, type Job } from '../../pkg/model/index.js';
import { execIn, FORK_BOMB_CMD, gatedCmd, openGate, TEST_IMAGE } from '../harness/docker.js';
import { dockerWorkerSuite, placeJobs, readLogs, runningContainer, submitAndPlace, waitFor, waitForState } from './helpers.js';

const FINAL = ['Succeeded', 'Failed', 'Cancelled'] as const;

/**
 * Jobs in their box (docs/security.md): what Docker really created for a
 * job's container, and jobs that try to take the node down.
 */
describe('worker: job containers are confined', () => {
  const suite = dockerWorkerSuite('worker-box');

  it('drops every capability but the allowlist (no NET_RAW), no new privileges, a pids cap, no swap, not privileged', async () => {
    const { store, worker } = await suite.start();
    const id = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, args: ['sleep', '30'], memory: '48Mi' });
    const summary = await runningContainer(suite.docker, id);
    const info = await suite.docker.getContainer(summary.Id).inspect();
    const host = info.HostConfig as typeof info.HostConfig & { CapDrop?: string[]; CapAdd?: string[]; SecurityOpt?: string[] };
    expect(host.CapDrop).toEqual(['ALL']);
    expect([...(host.CapAdd ?? [])].sort()).toEqual([...DEFAULT_CAP_ALLOWLIST].sort());
    expect(host.CapAdd).not.toContain('NET_RAW');
    expect(host.SecurityOpt).toEqual(['no-new-privileges']);
    expect(host.PidsLimit).toBe(DEFAULT_PIDS_LIMIT);
    expect(host.Memory).toBe(48 * 2 ** 20);
    expect(host.MemorySwap).toBe(host.Memory);
    expect(host.Privileged).toBe(false);
    expect(host.ReadonlyRootfs).toBe(false);
    expect(info.Config.User).toBe('');
    expect(info.Config.Env).toContain('NVIDIA_VISIBLE_DEVICES=void');
    // The kernel agrees: no raw-socket capability in the container's bounding set (bit 13).
    const { stdout: text } = await execIn(suite.docker, summary.Id, ['grep', 'CapBnd', '/proc/self/status']);
    const bounding = BigInt(`0x${/CapBnd:\s*([0-9a-f]+)/.exec(text)?.[1] ?? 'ffffffffff'}`);
    expect(bounding & (1n << 13n)).toBe(0n);
  });

  it('--job-user, --readonly-rootfs and a custom allowlist reach the container; /tmp stays writable', async () => {
    const { store, worker } = await suite.start({ box: { capAdd: ['KILL'], pidsLimit: 64, user: '65534:65534', readonlyRootfs: true } });
    const id = await submitAndPlace(store, worker.nodeId, {
      image: TEST_IMAGE,
      cmd: "id -u; id -g; echo scratch > /tmp/x && cat /tmp/x; awk '$2 == \"/\" { print $4 }' /proc/mounts | grep -q '^ro' && echo read-only; sleep 30",
    });
    const summary = await runningContainer(suite.docker, id);
    const info = await suite.docker.getContainer(summary.Id).inspect();
    const host = info.HostConfig as typeof info.HostConfig & { CapAdd?: string[]; Tmpfs?: Record<string, string> };
    expect(host.CapAdd).toEqual(['KILL']);
    expect(host.PidsLimit).toBe(64);
    expect(host.ReadonlyRootfs).toBe(true);
    expect(Object.keys(host.Tmpfs ?? {})).toEqual(['/tmp']);
    expect(info.Config.User).toBe('65534:65534');
    // All of its output stored before it is stopped.
    await waitFor('the output', async () => ((await readLogs(store, id)).stdout.endsWith('read-only\n') ? true : undefined), 15_000);
    await store.cancelJob(id, 0);
    await waitForState(store, id, [...FINAL], 15_000);
    expect((await readLogs(store, id)).stdout).toBe('65534\n65534\nscratch\nread-only\n');
  });

  it('a fork bomb hits the pids cap and ends Failed at its timeout; the node then runs the next job', async () => {
    // PID 1 ignores SIGTERM: a short grace keeps the test short.
    const { store, worker } = await suite.start({ box: { capAdd: [...DEFAULT_CAP_ALLOWLIST], pidsLimit: 64, readonlyRootfs: false }, stopGraceMs: 500 });
    // The bomb goes on until it is killed (FORK_BOMB_CMD), so the job can only end at its timeout. The timeout is
    // a safety net sized for a loaded machine: the test must see the box at its cap before the job ends.
    const bomb = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, cmd: FORK_BOMB_CMD }, [], { timeoutMs: 20_000 });
    const container = suite.docker.getContainer((await runningContainer(suite.docker, bomb)).Id);
    // The kernel holds the bomb at the cap, never above it.
    const pids = await waitFor('the bomb to reach the pids cap', async () => {
      const stats = await container.stats({ stream: false, 'one-shot': true });
      const current = stats.pids_stats?.current ?? 0;
      if (current === 0) throw new Error(`the bomb's container ended before it reached the cap: ${JSON.stringify((await store.getJob(bomb))?.value)}`);
      return current >= 64 ? current : undefined;
    }, 20_000);
    expect(pids).toBe(64);
    const ended = await waitForState(store, bomb, [...FINAL], 60_000);
    expect(ended).toMatchObject({ state: 'Failed', reason: expect.stringMatching(/^Timeout/) });
    const after = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, cmd: 'echo still here' });
    expect(await waitForState(store, after, [...FINAL], 60_000)).toMatchObject({ state: 'Succeeded' });
    expect((await readLogs(store, after)).stdout).toBe('still here\n');
  }, 180_000);

  it('a memory hog is killed at its limit (no swap to hide in) and ends Failed as out of memory', async () => {
    const { store, worker } = await suite.start();
    // The engine learns of an OOM kill from a watch on the container's memory cgroup, which containerd sets up only
    // after the container's process started: a hog that fills 16 MiB in the first milliseconds can be killed
    // before the watch exists, and the engine then reports a plain exit 137 (containerd/containerd#8180). So it
    // holds at a gate opened once the engine reports it running (the watch is set up by then). Then each doubling
    // keeps the whole string in the shell's memory: the limit is reached within a second.
    const id = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, cmd: gatedCmd('x=1234567890; while :; do x="$x$x"; done'), memory: '16Mi' }, [], {
      timeoutMs: 120_000,
    });
    await openGate(suite.docker, (await runningContainer(suite.docker, id)).Id);
    const job = await waitForState(store, id, [...FINAL], 120_000);
    expect(job).toMatchObject({ state: 'Failed', exitCode: 137, reason: expect.stringMatching(/out of memory/) });
  }, 180_000);

  it('a log flood is cut at the node\'s --max-log with the marker, and the job still ends at its timeout', async () => {
    const { store, worker } = await suite.start({ maxLogBytes: 64 * 1024, stopGraceMs: 500 });
    const id = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, cmd: 'yes flood' }, [], { timeoutMs: 3000 });
    const job = await waitForState(store, id, [...FINAL], 25_000);
    expect(job).toMatchObject({ state: 'Failed', reason: expect.stringMatching(/^Timeout/) });
    const logs = await readLogs(store, id);
    expect(logs.stdout.length + logs.stderr.length).toBeLessThanOrEqual(64 * 1024 + 200);
    expect(logs.stdout + logs.stderr).toMatch(/\[titan\] log truncated: output exceeded 64/);
  });

  it('a job record with a reserved env key (written around titan submit) fails to start with the reason, once', async () => {
    const { store, worker } = await suite.start();
    const job: Job = {
      name: '', kind: 'docker', image: TEST_IMAGE, command: ['nvidia-smi'], env: { NVIDIA_VISIBLE_DEVICES: 'all' },
      resources: { cpu: 100, memory: 32 * 2 ** 20, gpuMilli: 0 }, priority: 0, labels: {},
      id: newJobId(), state: 'Pending', createdAt: Date.now(), attempt: 0,
    };
    await store.createJobs([job]);
    await placeJobs(store, worker.nodeId, [job.id]);
    const ended = await waitForState(store, job.id, [...FINAL], 15_000);
    expect(ended).toMatchObject({ state: 'Failed', attempt: 1, reason: expect.stringMatching(/env NVIDIA_VISIBLE_DEVICES is reserved/) });
    expect((await readLogs(store, job.id)).stderr).toMatch(/\[titan\] env NVIDIA_VISIBLE_DEVICES is reserved/);
  });
});
