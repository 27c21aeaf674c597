import { isCompactedError, prefixEnd, type Store } from '../../pkg/store/index.js';
import { sleep } from './wait.js';

/** etcd's database file and the part of it in use, in MiB (the file shrinks only by a defragmentation). */
export interface EtcdDbSize {
  dbMiB: number;
  inUseMiB: number;
  version: string;
}

export async function etcdDbSize(store: Store): Promise<EtcdDbSize> {
  const status = await store.call(() => store.client.maintenance.status());
  return { dbMiB: Number(status.dbSize) / 2 ** 20, inUseMiB: Number(status.dbSizeInUse) / 2 ** 20, version: status.version };
}

/** Jobs under the prefix, and the revision of the count. */
export async function countJobs(store: Store): Promise<{ count: number; revision: string }> {
  const prefix = store.keys.collection('jobs');
  const res = await store.call(() => store.client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), count_only: true }));
  return { count: Number(res.count), revision: res.header.revision };
}

/** True once etcd's history is compacted past `revision` (a read at the revision before it fails). */
export async function compactedTo(store: Store, revision: bigint): Promise<boolean> {
  try {
    await store.client.kv.range({ key: Buffer.from(store.keys.leader()), revision: String(revision - 1n), count_only: true });
    return false;
  } catch (err) {
    if (isCompactedError(err)) return true;
    throw err;
  }
}

export interface RetentionWait {
  /** Jobs retention leaves: the master's --retain-jobs. */
  retain: number;
  /** Throws to give up (the master died, a deadline passed); `what` says what was being waited for. */
  check: (what: string) => void;
  progress: (line: string) => void;
  /** Each count of the jobs while waiting. */
  onCount?: (count: number) => void;
}

/**
 * Waits until the master's retention has removed the ended jobs beyond
 * `retain`, then until its compaction has passed the removal, then until
 * etcd has freed the compacted space (its in-use size stops moving, at most
 * 30 s), and measures the database. The file itself keeps its size (only a
 * defragmentation would shrink it); what compaction frees is reused by
 * later writes, which is what keeps it bounded.
 */
export async function waitForRetention(store: Store, wait: RetentionWait): Promise<{ jobsLeft: number; size: EtcdDbSize }> {
  let jobs = await countJobs(store);
  for (let lastReport = performance.now(); jobs.count > wait.retain; jobs = await countJobs(store)) {
    wait.onCount?.(jobs.count);
    wait.check(`with ${jobs.count} jobs in etcd (want at most ${wait.retain})`);
    if (performance.now() - lastReport >= 5000) {
      lastReport = performance.now();
      wait.progress(`retention: ${jobs.count} jobs in etcd`);
    }
    await sleep(500);
  }
  wait.onCount?.(jobs.count);
  const removedAt = BigInt(jobs.revision);
  wait.progress(`retention: ${jobs.count} jobs left at revision ${jobs.revision}; waiting for a compaction past it`);
  while (!(await compactedTo(store, removedAt))) {
    wait.check(`waiting for a compaction past revision ${jobs.revision}`);
    await sleep(500);
  }
  // etcd compacts in the background, in batches: wait until the space in use stops shrinking.
  let size = await etcdDbSize(store);
  for (let steady = 0, until = performance.now() + 30_000; steady < 4 && performance.now() < until; ) {
    await sleep(500);
    const next = await etcdDbSize(store);
    steady = next.inUseMiB === size.inUseMiB ? steady + 1 : 0;
    size = next;
  }
  return { jobsLeft: jobs.count, size };
}
