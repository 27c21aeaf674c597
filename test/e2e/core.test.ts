import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Assignment, Job, NodeInfo } from '../../pkg/model/index.js';
import { ProcessCluster } from '../harness/cluster.js';
import { dockerClient, gatedCmd, openGate, requireDocker, TEST_IMAGE } from '../harness/docker.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { startProcess, BIN } from '../harness/processes.js';
import { waitFor } from '../harness/wait.js';

let etcd: EtcdServer;
let cluster: ProcessCluster;

beforeAll(async () => {
  await requireDocker();
  etcd = await startEtcd({ name: 'e2e' });
});
afterAll(async () => {
  await etcd?.stop();
});
afterEach(async () => {
  await cluster?.stop();
});

function uniqueNode(name: string): string {
  return `${name}-${Math.random().toString(36).slice(2, 7)}`;
}

async function status(id: string): Promise<Job & { status: string }> {
  const res = await cluster.cli('status', id, '--output', 'json');
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as Job & { status: string };
}

async function submit(...args: string[]): Promise<string> {
  const res = await cluster.cli('submit', ...args);
  expect(res.code, res.stderr).toBe(0);
  return res.stdout.trim();
}

async function waitForNodes(count: number): Promise<void> {
  await waitFor(() => `${count} registered nodes\n${cluster.logs()}`, async () => (await cluster.store.listNodes()).items.length === count);
}

describe('submit → schedule → run → logs', () => {
  it('runs a container to success and shows its output', async () => {
    cluster = new ProcessCluster(etcd);
    cluster.startMaster();
    cluster.startWorker(uniqueNode('w'));
    await waitForNodes(1);
    const res = await cluster.cli('submit', '--image', TEST_IMAGE, '--cmd', 'echo hello from titan; echo to stderr >&2', '--wait');
    expect(res.code, `${res.stderr}\n${cluster.logs()}`).toBe(0);
    const id = res.stdout.trim();
    const job = await status(id);
    expect(job).toMatchObject({ status: 'Succeeded', exitCode: 0, attempt: 1 });
    const logs = await cluster.cli('logs', id);
    expect(logs.stdout).toBe('hello from titan\n');
    expect(logs.stderr).toBe('to stderr\n');
  });

  it('records a failing container as Failed with its exit code, and --wait exits with it', async () => {
    cluster = new ProcessCluster(etcd);
    cluster.startMaster();
    cluster.startWorker(uniqueNode('w'));
    await waitForNodes(1);
    const res = await cluster.cli('submit', '--image', TEST_IMAGE, '--cmd', 'echo about to fail; exit 7', '--wait');
    expect(res.code).toBe(7);
    const job = await status(res.stdout.trim());
    expect(job).toMatchObject({ status: 'Failed', exitCode: 7 });
    expect(job.reason).toMatch(/exited with code 7/);
  });

  it('runs shell jobs as host processes, success and failure', async () => {
    cluster = new ProcessCluster(etcd);
    cluster.startMaster();
    cluster.startWorker(uniqueNode('w'));
    await waitForNodes(1);
    const ok = await cluster.cli('submit', '--shell', 'echo shell says $GREETING', '--env', 'GREETING=hi', '--wait');
    expect(ok.code, ok.stderr).toBe(0);
    expect((await cluster.cli('logs', ok.stdout.trim())).stdout).toBe('shell says hi\n');
    const bad = await cluster.cli('submit', '--shell', 'exit 4', '--wait');
    expect(bad.code).toBe(4);
    expect(await status(bad.stdout.trim())).toMatchObject({ status: 'Failed', exitCode: 4 });
  });
});

describe('queueing and capacity', () => {
  it('queues the third of three jobs on a worker that fits two, and runs it when one ends', async () => {
    cluster = new ProcessCluster(etcd);
    cluster.startMaster();
    cluster.startWorker(uniqueNode('small'), ['--cpu', '2', '--memory', '2Gi']);
    await waitForNodes(1);
    // One transaction: the third job cannot be placed before one of the first two ends.
    const bulk = await cluster.cli('submit', '-n', '3', '-t', '4', '--image', TEST_IMAGE, '--cpu', '1', '--mem', '256Mi', '--output', 'json');
    expect(bulk.code, bulk.stderr).toBe(0);
    const ids = (JSON.parse(bulk.stdout) as { ids: string[] }).ids;
    // Read from etcd, not through a CLI process: under load a CLI call takes seconds, and the
    // window between the reason's write and the first job's end is the job's 4 s. The master's
    // first pass can itself come late on a loaded machine, hence the long timeout.
    const third = await waitFor(() => `third job pending with a reason\n${cluster.logs()}`, async () => {
      const j = (await cluster.store.getJob(ids[2]))?.value;
      return j?.state === 'Pending' && j.reason ? j : undefined;
    }, 60_000);
    expect(third.reason).toMatch(/waiting for capacity: needs 1 cores/);
    const done = await waitFor(() => `all three succeeded\n${cluster.logs()}`, async () => {
      const jobs = (await Promise.all(ids.map((id) => cluster.store.getJob(id)))).map((j) => j?.value);
      return jobs.every((j) => j?.state === 'Succeeded') ? (jobs as Job[]) : undefined;
    }, 120_000);
    const firstEnd = Math.min(done[0].finishedAt ?? 0, done[1].finishedAt ?? 0);
    expect(done[2].startedAt).toBeGreaterThanOrEqual(firstEnd);
  });

  it('keeps a job larger than every node pending, then places it when a bigger worker joins', async () => {
    cluster = new ProcessCluster(etcd);
    cluster.startMaster();
    cluster.startWorker(uniqueNode('small'), ['--cpu', '2', '--memory', '2Gi']);
    await waitForNodes(1);
    const id = await submit('--shell', 'echo big job ran', '--cpu', '8', '--mem', '1Gi');
    const pending = await waitFor('never-fits reason', async () => (await status(id)).reason);
    expect(pending).toBe('no registered node can ever run it: needs 8 cores, the largest node has 2 cores; waiting for a larger node');
    const big = uniqueNode('big');
    cluster.startWorker(big, ['--cpu', '16', '--memory', '8Gi']);
    const done = await waitFor('big job done', async () => {
      const j = await status(id);
      return j.status === 'Succeeded' ? j : undefined;
    }, 30_000);
    expect(done.node).toBe(big);
  });

  it('packs two workers most-allocated first and never exceeds a node', async () => {
    cluster = new ProcessCluster(etcd);
    cluster.startMaster();
    const small = uniqueNode('small');
    const large = uniqueNode('large');
    cluster.startWorker(small, ['--cpu', '3', '--memory', '4Gi']);
    cluster.startWorker(large, ['--cpu', '6', '--memory', '8Gi']);
    await waitForNodes(2);
    const nodes = new Map((await cluster.store.listNodes()).items.map((n) => [n.value.id, n.value] as [string, NodeInfo]));
    const bulk = await cluster.cli('submit', '-n', '12', '-t', '3', '--image', TEST_IMAGE, '--cpu', '1', '--mem', '128Mi', '--output', 'json');
    expect(bulk.code, bulk.stderr).toBe(0);
    const ids = (JSON.parse(bulk.stdout) as { ids: string[] }).ids;
    expect(ids).toHaveLength(12);
    const first = await waitFor('first wave placed', async () => {
      const a = (await cluster.store.listAssignments()).items.map((i) => i.value);
      return a.length === 9 ? a : undefined;
    });
    const count = (list: Assignment[], node: string) => list.filter((a) => a.nodeId === node).length;
    // Most-allocated: the 3-core node fills completely, the rest go to the 6-core node.
    expect(count(first, small)).toBe(3);
    expect(count(first, large)).toBe(6);
    await waitFor(() => `all twelve succeeded\n${cluster.logs()}`, async () => {
      const list = (await cluster.store.listAssignments()).items.map((i) => i.value);
      for (const [id, info] of nodes) {
        const cpu = list.filter((a) => a.nodeId === id).reduce((s, a) => s + a.resources.cpu, 0);
        expect(cpu).toBeLessThanOrEqual(info.capacity.cpu);
      }
      // Read from etcd, not through twelve CLI processes a poll, which a loaded machine spends the whole wait starting.
      const jobs = await Promise.all(ids.map((id) => cluster.store.getJob(id)));
      return jobs.every((j) => j?.value.state === 'Succeeded');
    }, 40_000, 100);
  });
});

describe('titan logs -f', () => {
  it('streams lines while the job runs and ends when it ends, with no duplicate or missing line', async () => {
    cluster = new ProcessCluster(etcd);
    cluster.startMaster();
    cluster.startWorker(uniqueNode('w'));
    await waitForNodes(1);
    // Three lines, then the job holds at its gate until the test opens it: lines the follower shows while the
    // job holds were streamed, not printed at the end (the job cannot have ended).
    const id = await submit('--image', TEST_IMAGE, '--cmd', `for i in 1 2 3; do echo line $i; done; ${gatedCmd('for i in 4 5 6; do echo line $i; done')}`);
    const follower = startProcess('logs -f', BIN.titan, ['logs', '-f', id], cluster.env);
    await waitFor('the first three lines, streamed', () => follower.output().includes('line 3\n'), 60_000);
    expect(follower.output()).toBe('line 1\nline 2\nline 3\n');
    expect(follower.child.exitCode).toBeNull();
    await waitFor('the job Running', async () => (await status(id)).status === 'Running');
    const docker = dockerClient();
    const container = await waitFor('the job\'s running container', async () =>
      (await docker.listContainers({ filters: { label: [`titan.job=${id}`], status: ['running'] } }))[0],
    );
    await openGate(docker, container.Id);
    expect(await follower.exited).toBe(0);
    expect(follower.output()).toBe('line 1\nline 2\nline 3\nline 4\nline 5\nline 6\n');
    expect((await status(id)).status).toBe('Succeeded');
  }, 180_000);
});
