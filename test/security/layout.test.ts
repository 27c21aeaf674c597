import { describe, expect, it } from 'vitest';
import { encode, LAYOUT_VERSION, records } from '../../pkg/store/index.js';
import { ProcessCluster } from '../harness/cluster.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { makeJob } from '../harness/jobs.js';
import { nodeRecord } from '../harness/records.js';
import { waitFor } from '../harness/wait.js';

/** Data carries its layout version; no component works on data of another version (it would misread it). */
const ctx = etcdSuite('layout');

describe('the key layout version', () => {
  it('a master records the version on a fresh prefix; titan migrate then has nothing to do', async () => {
    const cluster = new ProcessCluster(ctx.etcd);
    try {
      cluster.startMaster();
      const stored = await waitFor('the layout key', async () => (await cluster.store.get(cluster.store.keys.layout(), records.layout))?.value);
      expect(stored).toMatchObject({ version: LAYOUT_VERSION, writtenBy: 'titan-master' });
      const res = await cluster.cli('migrate');
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(/is in layout version 2: nothing to migrate/);
    } finally {
      await cluster.stop();
    }
  });

  it('titan migrate records the version where none is', async () => {
    const cluster = new ProcessCluster(ctx.etcd);
    try {
      const res = await cluster.cli('migrate');
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(/^recorded layout version 2 under /);
      expect((await cluster.store.get(cluster.store.keys.layout(), records.layout))?.value.version).toBe(2);
    } finally {
      await cluster.stop();
    }
  });

  it('a master, a worker and titan migrate refuse data of a newer layout, saying what to do', async () => {
    const cluster = new ProcessCluster(ctx.etcd);
    try {
      await cluster.store.client
        .put(cluster.store.keys.layout())
        .value(encode({ version: LAYOUT_VERSION + 1, writtenAt: Date.now(), writtenBy: 'titan-master 9.0.0' }));
      const master = cluster.startMaster();
      expect(await master.exited).toBe(1);
      expect(master.output()).toMatch(/layout version 3 \(written by titan-master 9\.0\.0\); this titan-master reads version 2: upgrade it/);
      const worker = cluster.startWorker('layout-w');
      expect(await worker.exited).toBe(1);
      expect(worker.output()).toMatch(/this titan-worker reads version 2: upgrade it/);
      expect(await cluster.store.getNode('layout-w')).toBeUndefined();
      const res = await cluster.cli('migrate');
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^error: the data is in layout version 3, newer than this titan \(2\): use a newer titan\n$/);
    } finally {
      await cluster.stop();
    }
  });

  it('version 1 data (output under the job, written by nodes that wrote job records) is refused until titan migrate moves it', async () => {
    const cluster = new ProcessCluster(ctx.etcd);
    try {
      const { store } = cluster;
      const job = makeJob({ state: 'Succeeded', node: 'n2', attempt: 2, history: [{ attempt: 1, node: 'n1', finishedAt: 1, state: 'Failed' }] });
      await store.createJobs([job]);
      const v1Chunk = (attempt: number, text: string) =>
        store.client.put(`${store.keys.collection('logs')}${job.id}/000${attempt}/00000000`).value(encode({ seq: 0, entries: [{ stream: 'stdout', data: text }] }));
      await v1Chunk(1, 'first try\n');
      await v1Chunk(2, 'second try\n');

      const master = cluster.startMaster();
      expect(await master.exited).toBe(1);
      expect(master.output()).toMatch(/layout version 1; this titan-master reads version 2: run titan migrate/);

      // Not while anything of the old cluster may still write.
      await store.client.put(store.keys.node('n1')).value(encode(nodeRecord('n1')));
      const busy = await cluster.cli('migrate');
      expect(busy.code).toBe(1);
      expect(busy.stderr).toMatch(/^error: cannot migrate a running cluster \(nodes are registered\): stop submitting/);
      await store.client.delete().key(store.keys.node('n1'));

      const res = await cluster.cli('migrate');
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(/from layout version 1 to 2: 2 log chunks moved under their nodes/);
      expect((await cluster.cli('logs', job.id)).stdout).toBe('second try\n');
      expect((await cluster.cli('logs', job.id, '--attempt', '1')).stdout).toBe('first try\n');
      expect(await store.client.get(store.keys.logChunk('n1', job.id, 1, 0)).exists()).toBe(true);
      const again = cluster.startMaster();
      await waitFor('the master to start', () => /master started/.test(again.output()));
    } finally {
      await cluster.stop();
    }
  });
});
