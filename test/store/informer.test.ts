import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode, records, startInformer, Store, WatchCallbackError, type Versioned } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { startTcpProxy } from '../harness/tcp-proxy.js';
import { randomPrefix, waitFor } from '../harness/wait.js';

let etcd: EtcdServer;
beforeAll(async () => {
  etcd = await startEtcd({ name: 'informer' });
});
afterAll(async () => {
  await etcd?.stop();
});

describe('informer', () => {
  it('re-lists when the revision it would resume from was compacted while it was cut off', async () => {
    const prefix = randomPrefix();
    const direct = new Store({ endpoints: [etcd.endpoints], prefix });
    const proxy = await startTcpProxy(etcd.endpoints);
    const viaProxy = new Store({ endpoints: [proxy.endpoint], prefix });
    const dir = direct.keys.collection('nodes');
    await direct.client.put(`${dir}a`).value(encode({ n: 1 }));

    const cache = new Map<string, number>();
    let resets = 0;
    const informer = startInformer<{ n: number }>(viaProxy, dir, {
      reset(items: Versioned<{ n: number }>[]) {
        resets++;
        cache.clear();
        for (const i of items) cache.set(i.key, i.value.n);
      },
      events(events) {
        for (const e of events) {
          if (e.type === 'delete') cache.delete(e.key);
          else if (e.value) cache.set(e.key, e.value.n);
        }
      },
    }, { decode: (v) => decode<{ n: number }>(v) });
    await informer.ready;
    expect([...cache.values()]).toEqual([1]);

    await proxy.cut();
    await direct.client.put(`${dir}b`).value(encode({ n: 2 }));
    await direct.client.delete().key(`${dir}a`);
    const { revision } = await direct.list(dir, records.node);
    await direct.client.kv.compact({ revision, physical: true });
    await proxy.restore();

    await waitFor('the cache to match etcd again', () => cache.size === 1 && cache.get(`${dir}b`) === 2, 20_000);
    expect(resets).toBeGreaterThanOrEqual(2);
    await informer.stop();
    viaProxy.close();
    direct.close();
    await proxy.cut();
  });

  it('reports how far it has delivered: the list revision, then each watched event', async () => {
    const store = new Store({ endpoints: [etcd.endpoints], prefix: randomPrefix() });
    const dir = store.keys.collection('nodes');
    await store.client.put(`${dir}a`).value(encode({ n: 1 }));
    let seen = 0;
    const informer = startInformer<{ n: number }>(store, dir, { reset: () => undefined, events: (events) => void (seen += events.length) }, { decode: (v) => decode<{ n: number }>(v) });
    await informer.ready;
    const listed = informer.delivered();
    expect(listed?.revision).toBe(BigInt(await store.currentRevision()));

    await store.client.put(`${store.keys.collection('jobs')}x`).value(encode({ n: 0 })); // another prefix: not delivered here
    const put = await store.client.put(`${dir}b`).value(encode({ n: 2 }));
    await waitFor('the event', () => seen === 1, 10_000);
    expect(informer.delivered()?.revision).toBe(BigInt(put.header.revision));
    expect(informer.delivered()!.at).toBeGreaterThanOrEqual(listed!.at);
    await informer.stop();
    store.close();
  });
});

describe('informer handlers that throw', () => {
  it('are reported with the key and counted, and the informer keeps following the prefix', async () => {
    const store = new Store({ endpoints: [etcd.endpoints], prefix: randomPrefix() });
    const dir = store.keys.collection('nodes');
    await store.client.put(`${dir}a`).value(encode({ n: 1 }));
    const cache = new Map<string, number>();
    const reported: Error[] = [];
    let resets = 0;
    let throwOnce = true;
    const informer = startInformer<{ n: number }>(
      store,
      dir,
      {
        reset(items) {
          resets++;
          // The first re-list after the failure also fails: it is retried after a wait.
          if (resets === 2) throw new Error('reset bug');
          cache.clear();
          for (const i of items) cache.set(i.key, i.value.n);
        },
        events(events) {
          for (const e of events) {
            if (e.key === `${dir}bad` && throwOnce) {
              throwOnce = false;
              throw new Error('handler bug');
            }
            if (e.type === 'delete') cache.delete(e.key);
            else if (e.value) cache.set(e.key, e.value.n);
          }
        },
        error(err) {
          reported.push(err);
          // A failing error handler is survived too.
          throw new Error('logger bug');
        },
      },
      { decode: (v) => decode<{ n: number }>(v) },
    );
    await informer.ready;
    const warnings: string[] = [];
    const onWarning = (w: Error): number => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      await store.client.put(`${dir}bad`).value(encode({ n: 2 }));
      await waitFor('the re-list after the failures', () => cache.get(`${dir}bad`) === 2, 20_000);
      await store.client.put(`${dir}c`).value(encode({ n: 3 }));
      await waitFor('a later event', () => cache.get(`${dir}c`) === 3, 10_000);

      const failures = reported.filter((e): e is WatchCallbackError => e instanceof WatchCallbackError);
      expect(failures.map((e) => [e.callback, e.key])).toEqual([
        ['events', `${dir}bad`],
        ['reset', dir],
      ]);
      expect(failures[0].message).toContain('handler bug');
      // Two handlers and the two error calls that reported them.
      expect(informer.callbackFailures()).toBe(4);
      await waitFor('the warnings of the failing error handler', () => warnings.filter((w) => w.includes('logger bug')).length === 2, 5000);
    } finally {
      process.off('warning', onWarning);
      await informer.stop();
      store.close();
    }
  });
});
