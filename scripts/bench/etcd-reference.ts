import { newJobId } from '../../pkg/model/index.js';
import { Keys, prefixEnd, txnOp, type Store } from '../../pkg/store/index.js';
import { ratePerSecond, summarize, type LatencySummary } from './percentiles.js';

export interface EtcdReferenceOptions {
  /** Keys written by the batched run (then deleted). */
  keys: number;
  /** Puts per transaction. */
  perTxn: number;
  /** Transactions in flight at once. */
  inFlight: number;
  /** Single puts, one after the other. */
  sequentialPuts: number;
  /** What each key holds: a job-sized value, so the figure compares with placements. */
  value: Buffer;
}

export interface EtcdReference {
  batchedKeysPerSec?: number;
  batchedSeconds: number;
  sequentialPutsPerSec?: number;
  putLatencyMs?: LatencySummary;
}

/**
 * What this etcd can do on this machine, right now: the reference the
 * placement rate is held against. Keys look like job keys (same length,
 * same value size) but live under a scratch prefix next to the bench's own,
 * and are deleted afterwards, in transactions of the same size as they were
 * written: ONE DeleteRange over 20,000 keys leaves etcd 3.4 several times
 * slower per request until the next compaction (measured: a worker's job
 * write went from ~0.4 to ~2.8 ms of etcd CPU), which would skew
 * every later phase.
 */
export async function measureEtcdReference(store: Store, options: EtcdReferenceOptions): Promise<EtcdReference> {
  const scratch = new Keys(`${store.keys.root}-scratch`);
  const prefix = scratch.collection('jobs');
  try {
    const keys = Array.from({ length: options.keys }, () => scratch.job(newJobId()));
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += options.perTxn) batches.push(keys.slice(i, i + options.perTxn));

    const started = performance.now();
    await inLanes(batches, options.inFlight, (batch) => store.txn([], batch.map((k) => txnOp.put(k, options.value))));
    const batchedMs = performance.now() - started;

    const latencies: number[] = [];
    const sequentialKeys: string[] = [];
    const seqStarted = performance.now();
    for (let i = 0; i < options.sequentialPuts; i++) {
      const key = scratch.job(newJobId());
      sequentialKeys.push(key);
      const t0 = performance.now();
      await store.call(() => store.client.kv.put({ key: Buffer.from(key), value: options.value }));
      latencies.push(performance.now() - t0);
    }
    const seqMs = performance.now() - seqStarted;
    for (let i = 0; i < sequentialKeys.length; i += options.perTxn) batches.push(sequentialKeys.slice(i, i + options.perTxn));
    await inLanes(batches, options.inFlight, (batch) => store.txn([], batch.map((k) => txnOp.del(k))));
    return {
      batchedKeysPerSec: ratePerSecond(options.keys, batchedMs),
      batchedSeconds: batchedMs / 1000,
      sequentialPutsPerSec: ratePerSecond(options.sequentialPuts, seqMs),
      putLatencyMs: summarize(latencies),
    };
  } finally {
    // Whatever a failed run left behind (normally nothing).
    await deleteInBatches(store, prefix, options.perTxn);
  }
}

/**
 * Deletes every key under a prefix in transactions of `perTxn` deletes, never
 * in one DeleteRange (see above): keys are read a page at a time, keys only.
 */
export async function deleteInBatches(store: Store, prefix: string, perTxn = 64, inFlight = 8): Promise<number> {
  let deleted = 0;
  const end = prefixEnd(prefix);
  for (;;) {
    const res = await store.call(() => store.client.kv.range({ key: Buffer.from(prefix), range_end: end, limit: 4096, keys_only: true }));
    if (res.kvs.length === 0) return deleted;
    const keys = res.kvs.map((kv) => kv.key.toString());
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += perTxn) batches.push(keys.slice(i, i + perTxn));
    await inLanes(batches, inFlight, (batch) => store.txn([], batch.map((k) => txnOp.del(k))));
    deleted += keys.length;
  }
}

async function inLanes<T>(items: readonly T[], lanes: number, run: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await run(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(lanes, items.length) }, lane));
}
