import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../pkg/model/index.js';
import { ProcessCluster } from '../harness/cluster.js';
import { containerOutput, dockerClient, removeContainersByLabel, requireDocker, TEST_IMAGE } from '../harness/docker.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { BIN, startProcess } from '../harness/processes.js';
import { waitFor } from '../harness/wait.js';

let etcd: EtcdServer;
let cluster: ProcessCluster;

beforeAll(async () => {
  await requireDocker();
  etcd = await startEtcd({ name: 'faults' });
});
afterAll(async () => {
  await etcd?.stop();
});
afterEach(async () => {
  await cluster?.stop();
});

const unique = (name: string) => `${name}-${Math.random().toString(36).slice(2, 7)}`;

async function job(id: string): Promise<Job> {
  return (await cluster.store.requireJob(id)).value;
}

describe('faults', () => {
  it('a worker SIGKILLed mid-job (machine gone): the job completes on another worker with attempt 2', async () => {
    cluster = new ProcessCluster(etcd);
    cluster.startMaster();
    const doomed = unique('doomed');
    const doomedProcess = cluster.startWorker(doomed, ['--cpu', '4']);
    await waitFor('doomed registered', async () => (await cluster.store.listNodes()).items.length === 1);
    const res = await cluster.cli('submit', '--image', TEST_IMAGE, '--cmd', 'echo attempt $TITAN_ATTEMPT on $TITAN_NODE_ID; sleep 3', '--cpu', '2');
    const id = res.stdout.trim();
    await waitFor('running on doomed', async () => (await job(id)).state === 'Running');
    const survivor = unique('survivor');
    cluster.startWorker(survivor, ['--cpu', '2']);
    await doomedProcess.kill('SIGKILL');
    await removeContainersByLabel(dockerClient(), `titan.node=${doomed}`); // the machine is gone with its containers
    const done = await waitFor(() => `done on survivor\n${cluster.logs()}`, async () => {
      const j = await job(id);
      return j.state === 'Succeeded' ? j : undefined;
    }, 30_000);
    expect(done).toMatchObject({ node: survivor, attempt: 2, nodeLostCount: 1 });
    expect(done.history?.[0]).toMatchObject({ attempt: 1, node: doomed, failure: 'node-lost' });
    expect((await cluster.cli('logs', id)).stdout).toBe(`attempt 2 on ${survivor}\n`);
  });

  it("a worker process SIGKILLed takes its shell jobs with it, before the master could run them elsewhere", async () => {
    cluster = new ProcessCluster(etcd);
    cluster.startMaster();
    const worker = cluster.startWorker(unique('w'), ['--docker', 'off']);
    await waitFor('registered', async () => (await cluster.store.listNodes()).items.length === 1);
    const pidFile = path.join(os.tmpdir(), `titan-pid-${Math.random().toString(36).slice(2)}`);
    const res = await cluster.cli('submit', '--shell', `echo $$ > ${pidFile}; sleep 60`);
    expect(res.code, res.stderr).toBe(0);
    const pid = await waitFor('the job wrote its pid', () => (fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8')) : undefined));
    await worker.kill('SIGKILL');
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor('the job process is gone', () => !alive(), 2000);
    fs.rmSync(pidFile, { force: true });
  });

  it('etcd restarted mid-job: master, worker and a following titan logs -f carry on', async () => {
    cluster = new ProcessCluster(etcd);
    cluster.startMaster();
    // A TTL well above the restart time: a shorter one makes the worker fence itself (as it must).
    cluster.startWorker(unique('w'), ['--ttl', '10']);
    await waitFor('registered', async () => (await cluster.store.listNodes()).items.length === 1);
    const res = await cluster.cli('submit', '--image', TEST_IMAGE, '--cmd', 'for i in $(seq 1 20); do echo line $i; sleep 0.3; done');
    const id = res.stdout.trim();
    const follower = startProcess('logs -f', BIN.titan, ['logs', '-f', id], cluster.env);
    await waitFor('first lines', () => follower.output().includes('line 2'));
    const docker = dockerClient();
    const [container] = await docker.listContainers({ filters: { label: [`titan.job=${id}`] } });
    const printed = async (): Promise<number> => (await containerOutput(docker, container.Id)).stdout.split('\n').length - 1;
    await etcd.kill('SIGKILL');
    // Down while the job prints on: those lines reach etcd, and the follower, only after the restart.
    const printedAtKill = await printed();
    await waitFor('two lines printed while etcd is down', async () => (await printed()) >= printedAtKill + 2, 15_000);
    await etcd.restart();
    expect(await follower.exited).toBe(0);
    const expected = Array.from({ length: 20 }, (_, i) => `line ${i + 1}\n`).join('');
    expect(follower.output()).toBe(expected);
    expect(await job(id)).toMatchObject({ state: 'Succeeded', attempt: 1 });
  });
});
