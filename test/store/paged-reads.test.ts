import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { encode, isCompactedError, Store } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { randomPrefix } from '../harness/wait.js';

let etcd: EtcdServer;
beforeAll(async () => {
  etcd = await startEtcd({ name: 'paged-reads' });
});
afterAll(async () => {
  await etcd?.stop();
});

async function storeWithNodes(count: number): Promise<Store> {
  const store = new Store({ endpoints: [etcd.endpoints], prefix: randomPrefix() });
  for (let i = 0; i < count; i++) await store.client.put(store.keys.node(`n${i}`)).value(encode({ i }));
  return store;
}

/** Compacts etcd to its current revision (after one more write) right after the next `n`th range call returns. */
function compactAfterRange(store: Store, n: number): void {
  const range = store.client.kv.range.bind(store.client.kv);
  let calls = 0;
  vi.spyOn(store.client.kv, 'range').mockImplementation(async (req, opts) => {
    const res = await range(req, opts);
    if (++calls === n) {
      await store.client.put(store.keys.node('other')).value(encode({}));
      await store.compact(await store.currentRevision());
    }
    return res;
  });
}

describe('paged reads and compaction', () => {
  it('a scan holds its revision while it reads pages, and releases it after', async () => {
    const store = await storeWithNodes(3);
    const held: (bigint | undefined)[] = [];
    const { revision } = await store.scan(store.keys.collection('nodes'), () => void held.push(store.oldestHeldRevision()), { pageSize: 1 });
    // Held from the second page on: a compaction in this process must not pass it.
    expect(held).toEqual([undefined, BigInt(revision), BigInt(revision)]);
    expect(store.oldestHeldRevision()).toBeUndefined();
    store.close();
  });

  it('a scan overtaken by a compaction fails with the compacted error, and releases its revision', async () => {
    const store = await storeWithNodes(3);
    compactAfterRange(store, 1);
    const failure = await store.scan(store.keys.collection('nodes'), () => undefined, { pageSize: 1 }).catch((err: unknown) => err);
    expect(isCompactedError(failure)).toBe(true);
    expect(store.oldestHeldRevision()).toBeUndefined();
    store.close();
  });

  it('a list overtaken by a compaction starts over at a newer revision', async () => {
    const store = await storeWithNodes(3);
    compactAfterRange(store, 1);
    const { items, revision } = await store.list(store.keys.collection('nodes'), { pageSize: 1 });
    expect(items.map((i) => i.key)).toEqual(['n0', 'n1', 'n2', 'other'].map((id) => store.keys.node(id)));
    expect(BigInt(revision)).toBe(BigInt(await store.currentRevision()));
    store.close();
  });
});
