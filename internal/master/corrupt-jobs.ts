import type { Logger } from 'pino';
import type { ICompare } from 'etcd3';
import { corruptJobRecord } from '../../pkg/model/index.js';
import type { CorruptRecordError, Store } from '../../pkg/store/index.js';

/**
 * The leader's answer to a job record it could not read: the job ends Failed
 * with reason Corrupt (its spec is not trusted, so it never runs again), and
 * its assignment on `node`, if one is known, goes in the same transaction, so
 * no worker keeps an attempt of it. The replacement compares the corrupt
 * version, so a record rewritten meanwhile is looked at again instead. A key
 * whose last segment is no job id is left alone (titan doctor shows it).
 * True when the job was replaced.
 */
export async function failCorruptJob(
  store: Store,
  corrupt: CorruptRecordError,
  node: string | undefined,
  guard: readonly ICompare[],
  logger: Logger,
  now = Date.now(),
): Promise<boolean> {
  const id = store.keys.idOf(corrupt.key);
  if (corrupt.key !== store.keys.job(id)) return false;
  const next = corruptJobRecord(id, corrupt.why, now);
  if (!next) return false;
  const options = { guard, ...(node !== undefined ? { assignmentKey: store.keys.assignment(node, id) } : {}) };
  if (!(await store.replaceCorruptJob(corrupt, next, options))) return false;
  logger.warn({ job: id, key: corrupt.key, why: corrupt.why, node }, 'job record was corrupt: the job is now Failed (reason Corrupt)');
  return true;
}

/** failCorruptJob for every job record the jobs informer quarantined; returns how many were replaced. */
export async function failCorruptJobs(
  store: Store,
  quarantined: ReadonlyMap<string, CorruptRecordError>,
  nodeOf: (jobId: string) => string | undefined,
  guard: () => readonly ICompare[],
  logger: Logger,
): Promise<number> {
  let replaced = 0;
  for (const corrupt of [...quarantined.values()]) {
    if (await failCorruptJob(store, corrupt, nodeOf(store.keys.idOf(corrupt.key)), guard(), logger)) replaced++;
  }
  return replaced;
}
