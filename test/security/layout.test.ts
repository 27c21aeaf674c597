import { describe, expect, it } from 'vitest';
import { encode, LAYOUT_VERSION, records } from '../../pkg/store/index.js';
import { ProcessCluster } from '../harness/cluster.js';
import { etcdSuite } from '../harness/etcd-suite.js';
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
      expect(res.stdout).toMatch(/is in layout version 1: nothing to migrate/);
    } finally {
      await cluster.stop();
    }
  });

  it('titan migrate records the version where none is', async () => {
    const cluster = new ProcessCluster(ctx.etcd);
    try {
      const res = await cluster.cli('migrate');
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(/^recorded layout version 1 under /);
      expect((await cluster.store.get(cluster.store.keys.layout(), records.layout))?.value.version).toBe(1);
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
      expect(master.output()).toMatch(/layout version 2 \(written by titan-master 9\.0\.0\); this titan-master reads version 1: upgrade it/);
      const worker = cluster.startWorker('layout-w');
      expect(await worker.exited).toBe(1);
      expect(worker.output()).toMatch(/this titan-worker reads version 1: upgrade it/);
      expect(await cluster.store.getNode('layout-w')).toBeUndefined();
      const res = await cluster.cli('migrate');
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^error: the data is in layout version 2, newer than this titan \(1\): use a newer titan\n$/);
    } finally {
      await cluster.stop();
    }
  });
});
