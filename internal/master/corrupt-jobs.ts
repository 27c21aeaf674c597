import type { Logger } from 'pino';
import type { ICompare } from 'etcd3';
import { corruptJobRecord } from '../../pkg/model/index.js';
import type { CorruptRecordError, Store } from '../../pkg/store/index.js';

/**
 * The leader's answer to a job record it could not read: the job ends Failed
 * with reason Corrupt (its spec is not trusted, so it never runs again), and
 * its assignment, if the master knows one, goes in the same transaction, so
 * no worker keeps an attempt of it. Each replacement compares the corrupt
 * version, so a record rewritten meanwhile is looked at again instead.
 * A key whose last segment is no job id is left alone (titan doctor shows it).
 * Returns how many jobs were replaced.
 */
export async function failCorruptJobs(
  store: Store,
  quarantined: ReadonlyMap<string, CorruptRecordError>,
  nodeOf: (jobId: string) => string | undefined,
  guard: () => readonly ICompare[],
  logger: Logger,
  now = Date.now(),
): Promise<number> {
  let replaced = 0;
  for (const corrupt of [...quarantined.values()]) {
    const id = store.keys.idOf(corrupt.key);
    if (corrupt.key !== store.keys.job(id)) continue;
    const next = corruptJobRecord(id, corrupt.why, now);
    if (!next) continue;
    const node = nodeOf(id);
    const options = { guard: guard(), ...(node !== undefined ? { assignmentKey: store.keys.assignment(node, id) } : {}) };
    if (await store.replaceCorruptJob(corrupt, next, options)) {
      replaced++;
      logger.warn({ job: id, key: corrupt.key, why: corrupt.why, node }, 'job record was corrupt: the job is now Failed (reason Corrupt)');
    }
  }
  return replaced;
}
