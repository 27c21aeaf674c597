import type { Job } from '../../pkg/model/job.js';
import { matchesJob, parseJobQuery, selectJobs, type JobQuery } from '../../pkg/model/job-query.js';
import { parsePositiveInteger } from '../../pkg/model/parse.js';
import { queueOf } from '../../pkg/model/queue.js';
import { formatGpu } from '../../pkg/model/resources.js';
import { records } from '../../pkg/store/codec.js';
import type { ReadResult, Store } from '../../pkg/store/store.js';
import { ageSince, formatCpu, formatMemory, renderTable } from './format.js';

/** `titan list`'s flags as commander hands them over (repeatable ones as lists). */
export interface ListFlags {
  state?: string[];
  /** The flag `--state` was called before: still taken, not shown in the help. */
  status?: string[];
  queue?: string[];
  label?: string[];
  since?: string;
  sort?: string;
  limit?: string;
}

/** What a list shows (pkg/model/job-query.ts) and how many of them at most. */
export type ListQuery = JobQuery & { limit?: number };

export function parseListFlags(flags: ListFlags): ListQuery {
  const states = [...(flags.state ?? []), ...(flags.status ?? [])];
  return {
    ...parseJobQuery({
      ...(states.length > 0 ? { state: states } : {}),
      ...(flags.queue !== undefined ? { queue: flags.queue } : {}),
      ...(flags.label !== undefined ? { label: flags.label } : {}),
      ...(flags.since !== undefined ? { since: flags.since } : {}),
      ...(flags.sort !== undefined ? { sort: flags.sort } : {}),
    }),
    ...(flags.limit !== undefined ? { limit: parsePositiveInteger(flags.limit, 'limit') } : {}),
  };
}

/** What `titan list` says on stderr when nothing matches. */
export function describeEmptyList(query: ListQuery): string {
  return query.states ? `no ${query.states.join(' or ')} jobs` : 'no jobs';
}

/**
 * Reads jobs page by page, newest key first (ids sort by creation time).
 * Listed newest first (the default order), it stops once a --limit is met:
 * a large cluster never needs one huge read. Another order needs them all.
 */
export async function listJobs(store: Store, query: ListQuery, now: number = Date.now()): Promise<{ jobs: Job[]; skipped: ReadResult }> {
  const found: Job[] = [];
  const stopAtLimit = query.limit !== undefined && query.sort === undefined;
  const skipped = await store.scan(
    store.keys.collection('jobs'),
    records.job,
    (items) => {
      for (const { value } of items) if (matchesJob(query, value, now)) found.push(value);
      return !stopAtLimit || found.length < (query.limit ?? Infinity);
    },
    { descending: true },
  );
  return { jobs: selectJobs(found, query, now, query.limit), skipped };
}

// ---- rendering -----------------------------------------------------------------

/** `-o wide` adds what a job asks and holds, its attempts and why it is where it is. */
export function renderJobTable(jobs: readonly Job[], now: number = Date.now(), wide = false): string {
  if (!wide) {
    return renderTable(
      ['ID', 'NAME', 'STATUS', 'QUEUE', 'NODE', 'AGE'],
      jobs.map((j) => [j.id, j.name, j.state, queueOf(j), j.node ?? '', ageSince(j.createdAt, now)]),
    );
  }
  return renderTable(
    ['ID', 'NAME', 'STATUS', 'QUEUE', 'PRIORITY', 'NODE', 'CPU', 'MEMORY', 'GPU', 'GPU DEVICES', 'ATTEMPTS', 'AGE', 'REASON'],
    jobs.map((j) => [
      j.id,
      j.name,
      j.state,
      queueOf(j),
      String(j.priority),
      j.node ?? '',
      formatCpu(j.resources.cpu),
      formatMemory(j.resources.memory),
      formatGpu(j.resources.gpuMilli),
      (j.gpuDevices ?? []).join(','),
      String(j.attempt),
      ageSince(j.createdAt, now),
      j.reason ?? '',
    ]),
  );
}
