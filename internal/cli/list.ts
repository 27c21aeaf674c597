import type { Job } from '../../pkg/model/job.js';
import { matchesJob, parseJobQuery, selectJobs, type JobQuery } from '../../pkg/model/job-query.js';
import { parsePositiveInteger } from '../../pkg/model/parse.js';
import { queueOf } from '../../pkg/model/queue.js';
import { formatGpu } from '../../pkg/model/resources.js';
import { records } from '../../pkg/store/codec.js';
import { startInformer } from '../../pkg/store/informer.js';
import type { ReadResult, Store } from '../../pkg/store/store.js';
import { ageSince, formatCpu, formatMemory, renderTable } from './format.js';
import type { CliIO } from './io.js';
import type { OutputFormat } from './output.js';

/** `titan list`'s flags as commander hands them over (repeatable ones as lists). */
export interface ListFlags {
  state?: string[];
  /** The flag `--state` was called before: still taken, not shown in the help. */
  status?: string[];
  queue?: string[];
  label?: string[];
  since?: string;
  array?: string;
  sort?: string;
  limit?: string;
  watch?: boolean;
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
      ...(flags.array !== undefined ? { array: flags.array } : {}),
      ...(flags.sort !== undefined ? { sort: flags.sort } : {}),
    }),
    ...(flags.limit !== undefined ? { limit: parsePositiveInteger(flags.limit, 'limit') } : {}),
  };
}

/** What `titan list` says on stderr when nothing matches. */
export function describeEmptyList(query: ListQuery): string {
  const jobs = query.states ? `no ${query.states.join(' or ')} jobs` : 'no jobs';
  return query.array !== undefined ? `${jobs} in array ${query.array}` : jobs;
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
    // An array's tasks share their key prefix: only they are read.
    query.array !== undefined ? store.keys.arrayTasks(query.array) : store.keys.collection('jobs'),
    records.job,
    (items) => {
      for (const { value } of items) if (matchesJob(query, value, now)) found.push(value);
      return !stopAtLimit || found.length < (query.limit ?? Infinity);
    },
    { descending: true },
  );
  return { jobs: selectJobs(found, query, now, query.limit), skipped };
}

/** Changes arriving within this long are drawn once: a scheduling pass writes many jobs in a burst. */
export const WATCH_COALESCE_MS = 100;

/**
 * `titan list --watch` on etcd: the jobs collection followed with an
 * informer (list, then watch; re-listed after a failure), the query's jobs
 * handed to `onList` after every burst of changes. Only matching jobs are
 * held. A failure before the first list is the command's error; later ones
 * the informer rides out. Runs until `signal` aborts.
 */
export function watchJobs(store: Store, query: ListQuery, onList: (jobs: Job[]) => void, signal?: AbortSignal): Promise<void> {
  const held = new Map<string, Job>();
  let listed = false;
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  return new Promise<void>((resolve, reject) => {
    const finish = (end: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void informer.stop().then(end, end);
    };
    const draw = (): void => {
      timer = undefined;
      if (done) return;
      onList(selectJobs(held.values(), query, Date.now(), query.limit));
    };
    const changed = (): void => {
      timer ??= setTimeout(draw, WATCH_COALESCE_MS);
    };
    const informer = startInformer<Job>(
      store,
      store.keys.collection('jobs'),
      {
        reset(items) {
          held.clear();
          for (const { key, value } of items) held.set(key, value);
          listed = true;
          changed();
        },
        events(events) {
          const now = Date.now();
          for (const e of events) {
            if (e.value && matchesJob(query, e.value, now)) held.set(e.key, e.value);
            else held.delete(e.key);
          }
          changed();
        },
        error(err) {
          if (!listed) finish(() => reject(err));
        },
      },
      { decode: records.job.decode, keepListed: (job) => matchesJob(query, job, Date.now()) },
    );
    if (signal?.aborted) finish(resolve);
    else signal?.addEventListener('abort', () => finish(resolve), { once: true });
  });
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

/** Moves a terminal's cursor home and clears the screen: each redraw replaces the last. */
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

/**
 * What `titan list --watch` does with each list: prints it when it differs
 * from the last one printed (a change to a job outside the query wakes the
 * watch too). On a terminal each list replaces the last; elsewhere the
 * tables follow each other, a blank line between; `-o json` prints one JSON
 * array a line.
 */
export function listRedrawer(io: Pick<CliIO, 'out' | 'outIsTTY'>, format: OutputFormat, now: () => number = Date.now): (jobs: readonly Job[]) => void {
  let last: string | undefined;
  return (jobs) => {
    const seen = JSON.stringify(jobs);
    if (seen === last) return;
    const first = last === undefined;
    last = seen;
    if (format === 'json') io.out(`${seen}\n`);
    else io.out(`${io.outIsTTY ? CLEAR_SCREEN : first ? '' : '\n'}${renderJobTable(jobs, now(), format === 'wide')}`);
  };
}
