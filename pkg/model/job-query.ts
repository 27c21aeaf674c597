import { arrayIdOfTaskId, parseJobRef } from './array.js';
import { invalidInput } from './errors.js';
import { JOB_ID_PATTERN } from './id.js';
import { JOB_STATES, type Job, type JobState } from './job.js';
import { parseDuration, parseKeyValues } from './parse.js';
import { parseQueueName, queueOf } from './queue.js';

/**
 * Which jobs a list shows and in what order: `titan list`'s flags and the
 * API's `GET /v1/jobs` parameters, of the same names (state, queue, label,
 * since, sort). Both ways read through these functions, so the CLI lists
 * the same jobs in the same order whether it talks to etcd or to the API.
 * (And array, an array id: its tasks only.)
 */

export const JOB_SORTS = ['age', 'priority', 'queue'] as const;
/** age: newest first (the default); priority: highest first; queue: by queue name. Ties: newest first. */
export type JobSort = (typeof JOB_SORTS)[number];

export interface JobQuery {
  states?: JobState[];
  queues?: string[];
  /** Every one must be on the job. */
  labels?: Record<string, string>;
  /** Created within this long before the list is made (ms): a duration, so a query means the same when sent on. */
  sinceMs?: number;
  /** An array id: only its tasks. */
  array?: string;
  /** Text in the id or name, case-insensitive (the API's `q`, which the dashboard's search box sends). */
  text?: string;
  /** Absent: age. */
  sort?: JobSort;
}

/** The query as flags or query parameters give it: a repeatable value may come once or several times. */
export interface JobQueryInput {
  state?: string | readonly string[];
  queue?: string | readonly string[];
  label?: string | readonly string[];
  since?: string;
  array?: string;
  q?: string;
  sort?: string;
}

const many = (value: string | readonly string[]): readonly string[] => (typeof value === 'string' ? [value] : value);

/** Each value a comma list: `Pending,running` and `--state Pending --state Running` alike. */
function commaValues(value: string | readonly string[]): string[] {
  return many(value)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** `Pending,running` → states; case-insensitive, without repeats; an unknown name is bad input. */
export function parseStateFilter(value: string | readonly string[], field = 'state'): JobState[] {
  const out: JobState[] = [];
  for (const name of commaValues(value)) {
    const state = JOB_STATES.find((s) => s.toLowerCase() === name.toLowerCase());
    if (!state) throw invalidInput(field, `"${name}" is not a job state (use ${JOB_STATES.join(', ')})`);
    if (!out.includes(state)) out.push(state);
  }
  if (out.length === 0) throw invalidInput(field, `give at least one state (${JOB_STATES.join(', ')})`);
  return out;
}

/** `a,b` → queue names, each checked as a queue name (a queue that does not exist just matches nothing). */
export function parseQueueFilter(value: string | readonly string[], field = 'queue'): string[] {
  const names = commaValues(value).map((name) => parseQueueName(name, field));
  if (names.length === 0) throw invalidInput(field, 'give at least one queue name');
  return [...new Set(names)];
}

export function parseJobSort(text: string, field = 'sort'): JobSort {
  const value = text.trim().toLowerCase();
  if ((JOB_SORTS as readonly string[]).includes(value)) return value as JobSort;
  throw invalidInput(field, `"${text}" is not a sort order (use ${JOB_SORTS.join(', ')})`);
}

/** An array's id (`ID`, not one task's `ID[7]`), as the array filter takes it. */
export function parseArrayFilter(text: string, field = 'array'): string {
  const ref = parseJobRef(text.trim(), field);
  if (ref.task) throw invalidInput(field, `"${text}" names one task of an array; give the array's id (${ref.task.arrayId})`);
  if (!JOB_ID_PATTERN.test(ref.id) || arrayIdOfTaskId(ref.id) !== undefined) {
    throw invalidInput(field, `"${text}" is not an array id (titan submit --array prints it)`);
  }
  return ref.id;
}

/** Raw values → the query; anything malformed is bad input naming its flag/parameter. */
export function parseJobQuery(input: JobQueryInput): JobQuery {
  const sinceMs = input.since === undefined ? undefined : parseDuration(input.since, 'since');
  if (sinceMs !== undefined && sinceMs <= 0) throw invalidInput('since', 'must be more than zero');
  const sort = input.sort === undefined ? undefined : parseJobSort(input.sort);
  return {
    ...(input.state !== undefined ? { states: parseStateFilter(input.state) } : {}),
    ...(input.queue !== undefined ? { queues: parseQueueFilter(input.queue) } : {}),
    ...(input.label !== undefined ? { labels: parseKeyValues(many(input.label), 'label') } : {}),
    ...(sinceMs !== undefined ? { sinceMs } : {}),
    ...(input.array !== undefined ? { array: parseArrayFilter(input.array) } : {}),
    ...(input.q !== undefined && input.q !== '' ? { text: input.q } : {}),
    ...(sort !== undefined && sort !== 'age' ? { sort } : {}),
  };
}

/** The query as `GET /v1/jobs` parameters (what parseJobQuery reads back to the same query). */
export function jobQueryParams(query: JobQuery): URLSearchParams {
  const params = new URLSearchParams();
  if (query.states) params.set('state', query.states.join(','));
  if (query.queues) params.set('queue', query.queues.join(','));
  for (const [key, value] of Object.entries(query.labels ?? {})) params.append('label', `${key}=${value}`);
  if (query.sinceMs !== undefined) params.set('since', `${query.sinceMs}ms`);
  if (query.array !== undefined) params.set('array', query.array);
  if (query.text !== undefined) params.set('q', query.text);
  if (query.sort !== undefined) params.set('sort', query.sort);
  return params;
}

/** Whether the job is one the query lists, `now` being when the list is made. */
export function matchesJob(query: JobQuery, job: Job, now: number): boolean {
  if (query.states && !query.states.includes(job.state)) return false;
  if (query.queues && !query.queues.includes(queueOf(job))) return false;
  if (query.labels && Object.entries(query.labels).some(([k, v]) => job.labels[k] !== v)) return false;
  if (query.sinceMs !== undefined && job.createdAt < now - query.sinceMs) return false;
  if (query.array !== undefined && job.array?.id !== query.array) return false;
  if (query.text !== undefined) {
    const text = query.text.toLowerCase();
    if (!job.id.toLowerCase().includes(text) && !job.name.toLowerCase().includes(text)) return false;
  }
  return true;
}

/** Newest first; ids (which sort by creation time) break ties, so the order is total. */
export function byAge(a: Job, b: Job): number {
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** The order of a sort: its key first, then newest first. */
export function jobOrder(sort: JobSort | undefined): (a: Job, b: Job) => number {
  switch (sort) {
    case 'priority':
      return (a, b) => b.priority - a.priority || byAge(a, b);
    case 'queue': {
      return (a, b) => {
        const qa = queueOf(a);
        const qb = queueOf(b);
        return qa < qb ? -1 : qa > qb ? 1 : byAge(a, b);
      };
    }
    default:
      return byAge;
  }
}

/** The jobs the query lists, in its order, at most `limit` of them. */
export function selectJobs(jobs: Iterable<Job>, query: JobQuery, now: number, limit?: number): Job[] {
  const out: Job[] = [];
  for (const job of jobs) if (matchesJob(query, job, now)) out.push(job);
  out.sort(jobOrder(query.sort));
  return limit === undefined ? out : out.slice(0, limit);
}
