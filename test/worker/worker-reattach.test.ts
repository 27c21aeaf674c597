import fs from 'node:fs';
import { records } from '../../pkg/store/index.js';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../pkg/store/index.js';
import { TEST_IMAGE, containerOutput, removeContainersByLabel, requireDocker } from '../harness/docker.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { BIN, startProcess, type TitanProcess } from '../harness/processes.js';
import {
  containersOf,
  randomNodeId,
  randomPrefix,
  readLogs,
  runningContainer,
  startReportFolder,
  startTestWorker,
  submitAndPlace,
  waitFor,
  waitForState,
  type TestWorker,
} from './helpers.js';

const FINAL = ['Succeeded', 'Failed', 'Cancelled'] as const;

describe('worker: re-attaching after a restart', () => {
  let etcd: EtcdServer;
  let docker: Docker;
  const workers: TestWorker[] = [];
  const processes: TitanProcess[] = [];
  const nodes = new Set<string>();
  const dirs: string[] = [];

  beforeAll(async () => {
    docker = await requireDocker();
    etcd = await startEtcd({ name: 'worker-reattach' });
  });
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.kill('SIGKILL')));
    for (const w of workers.splice(0)) await w.stop();
    for (const node of nodes) await removeContainersByLabel(docker, `titan.node=${node}`);
    nodes.clear();
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  const start = async (prefix?: string, nodeId?: string): Promise<TestWorker> => {
    const tw = await startTestWorker(etcd.endpoints, { docker: 'on', ...(prefix ? { prefix } : {}), ...(nodeId ? { nodeId } : {}) });
    workers.push(tw);
    nodes.add(tw.worker.nodeId);
    return tw;
  };

  it('records a container that exited while no worker ran, with the rest of its output once', async () => {
    const first = await start();
    const { store, worker, config } = first;
    const id = await submitAndPlace(store, worker.nodeId, { image: TEST_IMAGE, cmd: 'echo a; sleep 1; echo b >&2; echo c; exit 3' });
    await waitFor('the first line', async () => ((await readLogs(store, id)).stdout === 'a\n' ? true : undefined));
    await worker.stop(); // leaves the container running
    const [container] = await containersOf(docker, id);
    await waitFor('the container to exit', async () => ((await docker.getContainer(container.Id).inspect()).State.Running ? undefined : true));

    const second = await start(config.prefix, config.nodeId);
    const job = await waitForState(second.store, id, [...FINAL]);
    expect(job).toMatchObject({ state: 'Failed', attempt: 1, exitCode: 3, reason: 'exited with code 3' });
    const logs = await readLogs(second.store, id);
    // Each stream in order, each line once (Docker does not order stdout against stderr).
    expect(logs.stdout).toBe('a\nc\n');
    expect(logs.stderr).toBe('b\n');
    expect(logs.seqs).toEqual([...logs.seqs.keys()]);
    expect(await containersOf(docker, id)).toHaveLength(0);
  });

  it('removes containers of this node that no assignment claims', async () => {
    const nodeId = randomNodeId();
    nodes.add(nodeId);
    const stray = await docker.createContainer({
      Image: TEST_IMAGE,
      Cmd: ['sleep', '60'],
      Labels: { 'titan.job': 'NOSUCHJOB0000', 'titan.attempt': '1', 'titan.node': nodeId },
      HostConfig: { NetworkMode: 'none' },
    });
    await stray.start();
    await start(undefined, nodeId);
    await waitFor('the stray container to go', async () => {
      const list = await docker.listContainers({ all: true, filters: { label: [`titan.node=${nodeId}`] } });
      return list.length === 0 ? true : undefined;
    });
  });

  it('a worker process SIGKILLed mid-job and restarted within the TTL re-attaches: Succeeded, attempt 1, every line once', async () => {
    const prefix = randomPrefix();
    const nodeId = randomNodeId();
    nodes.add(nodeId);
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-worker-state-'));
    dirs.push(stateDir);
    const args = [
      '--endpoints', etcd.endpoints, '--prefix', prefix, '--node-id', nodeId, '--ttl', '10', '--network', 'none',
      '--docker', 'on', '--cpu', '2', '--memory', '2Gi', '--gpus', 'none', '--state-dir', stateDir,
    ];
    const store = new Store({ endpoints: [etcd.endpoints], prefix });
    const folder = await startReportFolder(store);
    try {
      let proc = startProcess('worker', BIN.worker, args);
      processes.push(proc);
      const nodeKey = store.keys.node(nodeId);
      const before = await waitFor('the node to register', () => store.get(nodeKey, records.node), 15_000);

      const numbered = (word: string): string => Array.from({ length: 30 }, (_, i) => `${word} ${i + 1}\n`).join('');
      // Both streams, each resumed on its own (Docker does not order them against each other), with multi-byte text.
      const id = await submitAndPlace(store, nodeId, {
        image: TEST_IMAGE,
        cmd: 'i=1; while [ $i -le 30 ]; do echo "line € $i"; echo "err é $i" >&2; i=$((i+1)); sleep 0.2; done',
      });
      const container = await runningContainer(docker, id);
      await waitFor('a few lines', async () => ((await readLogs(store, id)).stdout.includes('line € 5\n') ? true : undefined), 15_000);

      await proc.kill('SIGKILL');
      const storedAtKill = (await readLogs(store, id)).stdout;
      const linesAtKill = storedAtKill.split('\n').length - 1;
      expect(linesAtKill).toBeLessThan(25);
      // Output goes on with nobody reading it: a few lines printed after the worker died.
      const printed = async (): Promise<number> => (await containerOutput(docker, container.Id)).stdout.split('\n').length - 1;
      const printedAtKill = await printed();
      await waitFor('three lines printed with no worker up', async () => ((await printed()) >= printedAtKill + 3 ? true : undefined), 15_000);
      expect((await containersOf(docker, id)).map((c) => c.State)).toEqual(['running']);

      proc = startProcess('worker', BIN.worker, args);
      processes.push(proc);
      const job = await waitForState(store, id, [...FINAL], 30_000);
      expect(job, proc.output()).toMatchObject({ state: 'Succeeded', attempt: 1, exitCode: 0 });
      expect(job.history?.map((h) => h.state)).toEqual(['Succeeded']);
      const logs = await readLogs(store, id);
      expect(logs.stdout).toBe(numbered('line €'));
      expect(logs.stderr).toBe(numbered('err é'));
      expect(logs.seqs).toEqual([...logs.seqs.keys()]);
      // The node key was never deleted: same registration, so the master saw no node loss.
      const after = await store.get(nodeKey, records.node);
      expect(after?.createRevision).toBe(before.createRevision);
      expect(after?.value.registeredAt).toBeGreaterThan(before.value.registeredAt);
      expect(await containersOf(docker, id)).toHaveLength(0);
      expect(proc.output()).toContain('re-attached to the run of an earlier worker process');
      console.log(`worker restart: ${linesAtKill} of 30 lines stored at the SIGKILL; ${logs.seqs.length} chunks in all, each line once`);
    } finally {
      await folder.stop();
      store.close();
    }
  });
});
