import { Type } from '@sinclair/typebox';
import { arrayTaskId, parseJobRef } from '../../pkg/model/array.js';
import { dependencyParents, unknownDependency } from '../../pkg/model/dependency.js';
import { TitanError, invalidInput } from '../../pkg/model/errors.js';
import { JOB_STATES, type Job } from '../../pkg/model/job.js';
import { JOB_SORTS, jobOrder, matchesJob, parseJobQuery, type JobQuery } from '../../pkg/model/job-query.js';
import { parsePositiveInteger } from '../../pkg/model/parse.js';
import { checkSpecDocument, SpecDocumentSchema } from '../../pkg/model/spec.js';
import { tokenCoversJob, tokenCoversQueue, type ApiToken } from '../../pkg/model/token.js';
import { queueOf } from '../../pkg/model/queue.js';
import type { Store } from '../../pkg/store/store.js';
import { arrayStatusView, cancelArrayTasks, mayBeArrayId, resolveJobRef, retryFailedTasks, retryUsage, type Resolved } from '../cli/arrays.js';
import { submitJobs } from '../cli/bulk-submit.js';
import { cancelJob, jobStatusView, parseGrace } from '../cli/jobs.js';
import { arraySubmissionView, planDocument, requireQueues, type SubmitPlan } from '../cli/submit.js';
import { BlockingQuery, scopeKey, sharedAnswer } from './blocking.js';
import type { ApiCache } from './cache.js';
import { defineRoute, type RouteSpec } from './route.js';

/** Most spec documents one POST takes: larger submissions go in several calls (or `titan submit -n`). */
export const MAX_JOBS_PER_POST = 1000;
/** Most bytes a request body may hold: MAX_JOBS_PER_POST specs of a few KiB each. */
export const MAX_BODY_BYTES = 8 * 2 ** 20;
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

/**
 * What the job routes take as an id (wider than new ids, so older or
 * hand-made ones still resolve), or `ID[7]`: one task of an array (URL-encoded
 * or not). Brackets pass here so that parseJobRef, the CLI's parser, judges them.
 */
export const ROUTE_JOB_ID = '^[A-Za-z0-9_.\\[\\]-]{1,136}$';
const JobId = Type.Object({ id: Type.String({ pattern: ROUTE_JOB_ID, description: 'job id' }) });
/** A parameter given once or repeated (`?label=a=1&label=b=2`). */
const StringOrList = (description: string) => Type.Union([Type.String(), Type.Array(Type.String())], { description });

/** A job the token may not see is answered as absent: a team does not learn of another's jobs. */
export function requireVisibleJob(job: Job | undefined, id: string, token: ApiToken | undefined): Job {
  if (!job || (token && !tokenCoversJob(token, job))) throw new TitanError('NotFound', `no job ${id} (see titan list)`);
  return job;
}

/**
 * A page of `GET /v1/jobs`: the query's jobs the token may see, in the
 * query's order, from after `cursor` (the last id of the previous page).
 * The cache hands jobs over newest first, the default order: they are read
 * until the page is full. Another order sorts the matching jobs first. The
 * cursor's job is found whether or not it still matches (it may have
 * changed state since its page), so a page never ends a list early.
 */
export function selectJobPage(
  jobs: Iterable<{ value: Job }>,
  query: JobQuery,
  token: ApiToken | undefined,
  now: number,
  limit: number,
  cursor: string | undefined,
): { jobs: Job[]; nextCursor: string | null } {
  function* candidates(): Generator<Job> {
    for (const { value: job } of jobs) {
      if (job.id === cursor || ((!token || tokenCoversJob(token, job)) && matchesJob(query, job, now))) yield job;
    }
  }
  const ordered = query.sort === undefined ? candidates() : [...candidates()].sort(jobOrder(query.sort));
  const out: Job[] = [];
  let started = cursor === undefined;
  for (const job of ordered) {
    if (!started) {
      started = job.id === cursor;
      continue;
    }
    if (out.length === limit) return { jobs: out, nextCursor: out[out.length - 1].id };
    out.push(job);
  }
  return { jobs: out, nextCursor: null };
}

/**
 * A token limited to queues names only jobs it can see in `after`: another
 * team's job is refused as if it did not exist (one not yet in the cache is
 * left to the creating transaction, which requires it to exist).
 */
function requireVisibleDependencies(job: Job, cache: ApiCache, token: ApiToken | undefined): void {
  if (!token?.queues || !job.after) return;
  for (const id of dependencyParents(job.after)) {
    // An array's queue is its tasks'.
    const parent = cache.jobs.get(id)?.value ?? (mayBeArrayId(id) ? cachedArrayTasks(cache, id)[0] : undefined);
    if (parent && !tokenCoversJob(token, parent)) throw unknownDependency(id);
  }
}

/** Validates every document before anything is written; a field at fault is named with its document's index. */
function planDocuments(body: unknown, token: ApiToken | undefined, cache: ApiCache): { plans: SubmitPlan[]; many: boolean } {
  const many = Array.isArray(body);
  const documents: unknown[] = many ? body : [body];
  if (documents.length === 0) throw invalidInput('body', 'an empty list submits nothing');
  if (documents.length > MAX_JOBS_PER_POST) throw invalidInput('body', `at most ${MAX_JOBS_PER_POST} jobs per request`);
  const now = Date.now();
  const plans = documents.map((doc, i) => {
    try {
      const plan = planDocument(checkSpecDocument(doc, 'request body'), now);
      const queue = queueOf(plan.jobs[0]);
      if (token && !tokenCoversQueue(token, queue)) {
        throw new TitanError('PermissionDenied', `this token cannot submit to queue "${queue}" (it covers ${token.queues?.join(', ')})`);
      }
      if (many && plan.array) throw invalidInput('array', 'an array goes in a request of its own, not in a list of documents');
      requireVisibleDependencies(plan.jobs[0], cache, token);
      return plan;
    } catch (err) {
      if (!many || !(err instanceof TitanError)) throw err;
      const field = `[${i}]${err.field !== undefined ? `.${err.field}` : ''}`;
      throw new TitanError(err.code, `${field}: ${err.message}`, { field });
    }
  });
  return { plans, many };
}

async function submit(store: Store, plans: readonly SubmitPlan[]): Promise<void> {
  const all = plans.flatMap((p) => p.jobs);
  await requireQueues(store, all);
  const single = plans.filter((p) => !p.gang && !p.array).flatMap((p) => p.jobs);
  if (single.length > 0) await store.createJobs(single);
  // Each gang in one transaction of its own: all of its replicas or none.
  for (const plan of plans) if (plan.gang) await store.createJobs(plan.jobs, { atomic: true });
  // An array (alone in its request) in batches, several in flight, as titan submit --array writes it.
  for (const plan of plans) if (plan.array) await submitJobs(store, plan.jobs);
}

/** The tasks of an array in the cache, in index order. */
function cachedArrayTasks(cache: ApiCache, arrayId: string): Job[] {
  const tasks: Job[] = [];
  for (const { value } of cache.jobs.values()) if (value.array?.id === arrayId) tasks.push(value);
  return tasks.sort((a, b) => (a.array?.index ?? 0) - (b.array?.index ?? 0));
}

/** resolveJobRef (from etcd, for writes), with what the token may not see answered as absent. */
async function resolveVisible(store: Store, id: string, token: ApiToken | undefined): Promise<Resolved> {
  const resolved = await resolveJobRef(store, id);
  requireVisibleJob(resolved.kind === 'job' ? resolved.job.value : resolved.tasks[0]?.value, id, token);
  return resolved;
}

const idsOf = (resolved: Resolved): string[] => (resolved.kind === 'job' ? [resolved.job.value.id] : resolved.tasks.map((t) => t.value.id));

/** Waits until the cache shows the write of every job of `written` (ids of `before`): the answer's effects are then readable. */
async function settleWritten(cache: ApiCache, before: Map<string, string | undefined>, written: readonly string[]): Promise<void> {
  const wanted = new Map(written.filter((id) => before.has(id)).map((id) => [id, before.get(id)]));
  await cache.settle('jobs', () => cache.changed(cache.jobs, wanted));
}

export function jobRoutes(cache: ApiCache, store: Store): RouteSpec[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/jobs',
      tag: 'jobs',
      summary: 'Submit a job (a spec document, as titan submit -f takes), a gang (replicas), an array (array: 0-99%10, alone in its request), or a list of jobs and gangs',
      permission: 'submit',
      body: Type.Union([SpecDocumentSchema, Type.Array(SpecDocumentSchema, { maxItems: MAX_JOBS_PER_POST })]),
      async handler({ body, token, reply }) {
        const { plans, many } = planDocuments(body, token, cache);
        const ids = plans.flatMap((p) => p.jobs.map((j) => j.id));
        const before = cache.versionsOf(cache.jobs, ids);
        await submit(store, plans);
        await cache.settle('jobs', () => cache.changed(cache.jobs, before));
        void reply.code(201);
        if (many) return { jobs: plans.flatMap((p) => p.jobs) };
        const plan = plans[0];
        if (plan.array) return arraySubmissionView(plan);
        return plan.gang ? { gang: plan.gang, jobs: plan.jobs } : plan.jobs[0];
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/jobs',
      tag: 'jobs',
      summary: 'List jobs, a page at a time: filtered by state, queue, label, since and array; newest first, or sorted by priority or queue',
      permission: 'read',
      blocking: true,
      query: Type.Object({
        state: Type.Optional(StringOrList(`states, comma-separated or repeated: ${JOB_STATES.join(',')}`)),
        queue: Type.Optional(StringOrList('queues, comma-separated or repeated')),
        label: Type.Optional(StringOrList('KEY=VALUE; repeat for several, a job must carry all')),
        since: Type.Optional(Type.String({ description: 'created within this long (30s, 1h, 2d)' })),
        array: Type.Optional(Type.String({ description: 'an array id: its tasks only' })),
        q: Type.Optional(Type.String({ description: 'text in the id or name' })),
        sort: Type.Optional(Type.String({ description: `order: ${JOB_SORTS.join(', ')} (default age: newest first; priority: highest first; queue: by name; ties newest first)` })),
        limit: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: `jobs per page (default ${DEFAULT_LIST_LIMIT}, at most ${MAX_LIST_LIMIT})` })),
        cursor: Type.Optional(Type.String({ description: 'nextCursor of the previous page' })),
        ...BlockingQuery,
      }),
      async handler({ query, token, reply }) {
        const limit = query.limit === undefined ? DEFAULT_LIST_LIMIT : parsePositiveInteger(query.limit, 'limit');
        if (limit > MAX_LIST_LIMIT) throw invalidInput('limit', `at most ${MAX_LIST_LIMIT}; follow nextCursor for more`);
        const filter = parseJobQuery(query);
        // `since` counts back from now: its answer is kept for the second it was made in, not until the next change.
        const now = Date.now();
        const second = filter.sinceMs === undefined ? undefined : Math.floor(now / 1000);
        const key = `jobs?${JSON.stringify([filter, second, limit, query.cursor])}|${scopeKey(token)}`;
        return sharedAnswer(cache, ['jobs'], query, reply, key, () => selectJobPage(cache.jobsNewestFirst(), filter, token, now, limit, query.cursor));
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/jobs/:id',
      tag: 'jobs',
      summary: "A job's state and details (as titan status --output json), with its gang's replicas; ID[7] one task of an array; an array id its tasks per state and failed indexes",
      permission: 'read',
      blocking: true,
      params: JobId,
      query: Type.Object({ ...BlockingQuery }),
      async handler({ params, query, token, reply }) {
        const ref = parseJobRef(params.id);
        if (!cache.jobs.has(ref.id) && !ref.task && mayBeArrayId(ref.id)) {
          const arrayId = ref.id;
          requireVisibleJob(cachedArrayTasks(cache, arrayId)[0], params.id, token);
          return sharedAnswer(cache, ['jobs'], query, reply, `array/${arrayId}|${scopeKey(token)}`, () => {
            const tasks = cachedArrayTasks(cache, arrayId);
            requireVisibleJob(tasks[0], params.id, token);
            return arrayStatusView(arrayId, tasks);
          });
        }
        requireVisibleJob(cache.jobs.get(ref.id)?.value, params.id, token);
        return sharedAnswer(cache, ['jobs'], query, reply, `job/${ref.id}|${scopeKey(token)}`, () => {
          const job = requireVisibleJob(cache.jobs.get(ref.id)?.value, params.id, token);
          const gangId = job.gang?.id;
          const replicas =
            gangId === undefined
              ? undefined
              : [...cache.jobs.values()].map((j) => j.value).filter((j) => j.gang?.id === gangId).sort((a, b) => (a.gang?.rank ?? 0) - (b.gang?.rank ?? 0));
          return jobStatusView(job, replicas);
        });
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/jobs/:id/cancel',
      tag: 'jobs',
      summary: 'Cancel a job: at once if pending, else its worker stops it (SIGTERM, then SIGKILL after grace); an array id cancels its tasks that have not ended',
      permission: 'submit',
      params: JobId,
      query: Type.Object({ grace: Type.Optional(Type.String({ description: 'time to stop before the kill (default 10s)' })) }),
      async handler({ params, query, token }) {
        const graceMs = parseGrace(query.grace);
        const resolved = await resolveVisible(store, params.id, token);
        const before = cache.versionsOf(cache.jobs, idsOf(resolved));
        if (resolved.kind === 'job') {
          const { job } = await cancelJob(store, resolved.job.value.id, graceMs);
          await settleWritten(cache, before, [job.id]);
          return job;
        }
        const outcome = await cancelArrayTasks(store, resolved.id, resolved.tasks, graceMs);
        // Tasks already stopping were not written again.
        const asked = new Set(resolved.tasks.filter((t) => t.value.cancelRequested).map((t) => t.value.id));
        const written = [...outcome.cancelled, ...outcome.stopping].map((i) => arrayTaskId(resolved.id, i)).filter((id) => !asked.has(id));
        await settleWritten(cache, before, written);
        return outcome;
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/jobs/:id/retry',
      tag: 'jobs',
      summary: 'Put a Failed or Cancelled job back in the queue (history kept); an array id with failed=1 its Failed tasks',
      permission: 'submit',
      params: JobId,
      query: Type.Object({
        failed: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('true'), Type.Literal('0'), Type.Literal('false')], { description: "an array id's Failed tasks (as titan retry ID --failed)" })),
      }),
      async handler({ params, query, token }) {
        const resolved = await resolveVisible(store, params.id, token);
        const usage = retryUsage(resolved, query.failed === '1' || query.failed === 'true');
        if (usage) throw usage;
        const before = cache.versionsOf(cache.jobs, idsOf(resolved));
        if (resolved.kind === 'job') {
          const job = await store.retryJob(resolved.job.value.id);
          await settleWritten(cache, before, [job.id]);
          return job;
        }
        const outcome = await retryFailedTasks(store, resolved.id, resolved.tasks);
        await settleWritten(cache, before, outcome.retried.map((i) => arrayTaskId(resolved.id, i)));
        return outcome;
      },
    }),
  ];
}
