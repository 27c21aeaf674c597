import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../pkg/model/index.js';
import { ProcessCluster } from '../harness/cluster.js';
import { FORK_BOMB_CMD, requireDocker, TEST_IMAGE } from '../harness/docker.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/wait.js';

let etcd: EtcdServer;
let cluster: ProcessCluster | undefined;

beforeAll(async () => {
  await requireDocker();
  etcd = await startEtcd({ name: 'e2e-job-box' });
});
afterAll(async () => {
  await etcd?.stop();
});
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

function uniqueNode(name: string): string {
  return `${name}-${Math.random().toString(36).slice(2, 7)}`;
}

async function started(c: ProcessCluster, count: number): Promise<void> {
  await waitFor(() => `${count} registered nodes\n${c.logs()}`, async () => (await c.store.listNodes()).items.length === count);
}

async function status(c: ProcessCluster, id: string): Promise<Job & { status: string; reason?: string }> {
  const res = await c.cli('status', id, '--output', 'json');
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as Job & { status: string; reason?: string };
}

/** Real master, worker and etcd processes: a job that attacks its node ends, and the cluster goes on. */
describe('jobs in their box, end to end', () => {
  it('a fork bomb ends Failed; master, worker and etcd stay up and the next job succeeds', async () => {
    const c = (cluster = new ProcessCluster(etcd));
    const master = c.startMaster();
    const worker = c.startWorker(uniqueNode('w'), ['--pids-limit', '64', '--stop-grace', '500ms']);
    await started(c, 1);
    // The bomb goes on until it is killed (FORK_BOMB_CMD): the job can only end at its timeout, which leaves the
    // bomb time to fill its box on a loaded machine.
    const bomb = await c.cli('submit', '--image', TEST_IMAGE, '--cmd', FORK_BOMB_CMD, '--timeout', '10s', '--wait');
    expect(bomb.code, `${bomb.stderr}\n${c.logs()}`).not.toBe(0);
    expect(await status(c, bomb.stdout.trim())).toMatchObject({ status: 'Failed', reason: expect.stringMatching(/^Timeout/) });
    expect(master.child.exitCode).toBeNull();
    expect(worker.child.exitCode).toBeNull();
    const next = await c.cli('submit', '--image', TEST_IMAGE, '--cmd', 'echo after the bomb', '--wait');
    expect(next.code, `${next.stderr}\n${c.logs()}`).toBe(0);
    expect((await c.cli('logs', next.stdout.trim())).stdout).toBe('after the bomb\n');
  }, 180_000);

  it('a node started with --executors docker is never offered a shell job: it stays Pending and says why', async () => {
    const c = (cluster = new ProcessCluster(etcd));
    c.startMaster();
    c.startWorker(uniqueNode('docker-only'), ['--executors', 'docker']);
    await started(c, 1);
    const nodes = await c.cli('nodes', '--output', 'json');
    expect((JSON.parse(nodes.stdout) as { executors: string[] }[])[0].executors).toEqual(['docker']);
    const submitted = await c.cli('submit', '--shell', 'echo should not run');
    expect(submitted.code, submitted.stderr).toBe(0);
    const id = submitted.stdout.trim();
    const pending = await waitFor('a pending reason', async () => {
      const job = await status(c, id);
      return job.reason ? job : undefined;
    });
    expect(pending).toMatchObject({ status: 'Pending', reason: expect.stringMatching(/needs a node that runs shell jobs/) });
    // Still Pending, with no attempt made, once the master has placed and run a later job on the node.
    const later = await c.cli('submit', '--image', TEST_IMAGE, '--cmd', 'true', '--wait');
    expect(later.code, `${later.stderr}\n${c.logs()}`).toBe(0);
    expect(await status(c, id)).toMatchObject({ status: 'Pending', attempt: 0 });
  });
});
