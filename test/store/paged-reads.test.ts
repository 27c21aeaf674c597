import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IKeyValue } from 'etcd3';
import { encode, isCompactedError, nextPageLimit, PAGE_BYTES, records, Store, txnOp } from '../../pkg/store/index.js';
import { nodeRecord } from '../harness/records.js';
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
  for (let i = 0; i < count; i++) await store.client.put(store.keys.node(`n${i}`)).value(encode(nodeRecord(`n${i}`)));
  return store;
}

/** Compacts etcd to its current revision (after one more write) right after the next `n`th range call returns. */
function compactAfterRange(store: Store, n: number): void {
  const range = store.client.kv.range.bind(store.client.kv);
  let calls = 0;
  vi.spyOn(store.client.kv, 'range').mockImplementation(async (req, opts) => {
    const res = await range(req, opts);
    if (++calls === n) {
      await store.client.put(store.keys.node('other')).value(encode(nodeRecord('other')));
      await store.compact(await store.currentRevision());
    }
    return res;
  });
}

describe('paged reads and compaction', () => {
  it('a scan holds its revision while it reads pages, and releases it after', async () => {
    const store = await storeWithNodes(3);
    const held: (bigint | undefined)[] = [];
    const { revision } = await store.scan(store.keys.collection('nodes'), records.node, () => void held.push(store.oldestHeldRevision()), { pageSize: 1 });
    // Held from the second page on: a compaction in this process must not pass it.
    expect(held).toEqual([undefined, BigInt(revision), BigInt(revision)]);
    expect(store.oldestHeldRevision()).toBeUndefined();
    store.close();
  });

  it('a scan overtaken by a compaction fails with the compacted error, and releases its revision', async () => {
    const store = await storeWithNodes(3);
    compactAfterRange(store, 1);
    const failure = await store.scan(store.keys.collection('nodes'), records.node, () => undefined, { pageSize: 1 }).catch((err: unknown) => err);
    expect(isCompactedError(failure)).toBe(true);
    expect(store.oldestHeldRevision()).toBeUndefined();
    store.close();
  });

  it('a list overtaken by a compaction starts over at a newer revision', async () => {
    const store = await storeWithNodes(3);
    compactAfterRange(store, 1);
    const { items, revision } = await store.list(store.keys.collection('nodes'), records.node, { pageSize: 1 });
    expect(items.map((i) => i.key)).toEqual(['n0', 'n1', 'n2', 'other'].map((id) => store.keys.node(id)));
    expect(BigInt(revision)).toBe(BigInt(await store.currentRevision()));
    store.close();
  });
});

describe('paged reads sized by bytes', () => {
  it('keeps every reply near PAGE_BYTES however large the records are', async () => {
    const store = new Store({ endpoints: [etcd.endpoints], prefix: randomPrefix() });
    // 300 records of 40 KB: 12 MB in all, 500 of them would be 20 MB in one reply.
    const blob = 'x'.repeat(40 * 1024);
    for (let i = 0; i < 300; i += 20) {
      await store.txn([], Array.from({ length: 20 }, (_, j) => txnOp.put(store.keys.node(`n${String(i + j).padStart(3, '0')}`), encode(nodeRecord(`n${i + j}`, { hostname: blob })))));
    }
    const range = store.client.kv.range.bind(store.client.kv);
    const replies: number[] = [];
    vi.spyOn(store.client.kv, 'range').mockImplementation(async (req, opts) => {
      const res = await range(req, opts);
      replies.push(res.kvs.reduce((n, kv) => n + kv.key.length + kv.value.length, 0));
      return res;
    });
    const { items, corruptCount } = await store.list(store.keys.collection('nodes'), records.node);
    expect(items).toHaveLength(300);
    expect(corruptCount).toBe(0);
    expect(Math.max(...replies)).toBeLessThanOrEqual(PAGE_BYTES * 1.1); // the first page (16 keys) too
    expect(replies.length).toBeLessThan(20);
    store.close();
  });

  it('sizes the next page from the bytes per key of the last one', () => {
    const kv = (bytes: number) => ({ key: Buffer.alloc(10), value: Buffer.alloc(bytes - 10) }) as unknown as IKeyValue;
    expect(nextPageLimit([kv(1000), kv(1000)], 500)).toBe(500);
    expect(nextPageLimit([kv(100 * 1024)], 500)).toBe(10);
    expect(nextPageLimit([kv(8 * 1024 * 1024)], 500)).toBe(1);
    expect(nextPageLimit([], 500)).toBe(500);
  });
});
