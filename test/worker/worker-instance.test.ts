import fs from 'node:fs';
import { records } from '../../pkg/store/index.js';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NodeInfo } from '../../pkg/model/index.js';
import { Store } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { BIN, startProcess, type TitanProcess } from '../harness/processes.js';
import { randomNodeId, randomPrefix, waitFor } from './helpers.js';

describe('worker: one live worker per node id', () => {
  let etcd: EtcdServer;
  const processes: TitanProcess[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    etcd = await startEtcd({ name: 'worker-instance' });
  });
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.kill('SIGKILL')));
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  const stateDir = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-worker-state-'));
    dirs.push(dir);
    return dir;
  };
  const worker = (prefix: string, nodeId: string, dir: string): TitanProcess => {
    const args = ['--endpoints', etcd.endpoints, '--prefix', prefix, '--node-id', nodeId, '--docker', 'off', '--executors', 'shell', '--cpu', '1', '--memory', '1Gi', '--gpus', 'none', '--ttl', '5', '--state-dir', dir];
    const proc = startProcess('worker', BIN.worker, args);
    processes.push(proc);
    return proc;
  };
  const registered = (store: Store, nodeId: string): Promise<NodeInfo> =>
    waitFor('the registration', async () => (await store.get(store.keys.node(nodeId), records.node))?.value);

  it('a second worker with a live node id exits 1 with a clear message and leaves the registration alone', async () => {
    const prefix = randomPrefix();
    const nodeId = randomNodeId();
    const store = new Store({ endpoints: [etcd.endpoints], prefix });
    try {
      const firstDir = stateDir();
      worker(prefix, nodeId, firstDir);
      const first = await registered(store, nodeId);
      expect(first.instance).toBe(fs.readFileSync(path.join(firstDir, 'instance'), 'utf8'));
      const before = await store.get(store.keys.node(nodeId), records.node);

      const second = worker(prefix, nodeId, stateDir());
      expect(await second.exited).toBe(1);
      expect(second.output()).toContain(`node id ${nodeId} is already registered by another live worker (instance ${first.instance})`);
      expect(second.output()).toContain('give this one another --node-id');
      const after = await store.get(store.keys.node(nodeId), records.node);
      expect(after?.modRevision).toBe(before?.modRevision);
      expect(after?.value.instance).toBe(first.instance);
    } finally {
      store.close();
    }
  }, 60_000);

  it('the same worker restarted from its state dir within the TTL takes its registration over', async () => {
    const prefix = randomPrefix();
    const nodeId = randomNodeId();
    const store = new Store({ endpoints: [etcd.endpoints], prefix });
    try {
      const dir = stateDir();
      const first = worker(prefix, nodeId, dir);
      const before = await registered(store, nodeId);
      await first.kill('SIGKILL'); // the lease lives on for its TTL
      worker(prefix, nodeId, dir);
      const after = await waitFor('the new registration', async () => {
        const node = await store.get(store.keys.node(nodeId), records.node);
        return node && node.value.registeredAt !== before.registeredAt ? node.value : undefined;
      });
      expect(after.instance).toBe(before.instance);
    } finally {
      store.close();
    }
  }, 60_000);
});
