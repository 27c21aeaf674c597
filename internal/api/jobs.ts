import { Type } from '@sinclair/typebox';
import { TitanError, invalidInput } from '../../pkg/model/errors.js';
import { JOB_STATES, type Job } from '../../pkg/model/job.js';
import { parsePositiveInteger } from '../../pkg/model/parse.js';
import { checkSpecDocument, SpecDocumentSchema } from '../../pkg/model/spec.js';
import { tokenCoversJob, tokenCoversQueue, type ApiToken } from '../../pkg/model/token.js';
import { queueOf } from '../../pkg/model/queue.js';
import type { Store } from '../../pkg/store/store.js';
import { cancelJob, jobStatusView, parseGrace, parseStatusFilter } from '../cli/jobs.js';
import { planDocument, requireQueues, type SubmitPlan } from '../cli/submit.js';
import { BlockingQuery, scopeKey, sharedAnswer } from './blocking.js';
import type { ApiCache } from './cache.js';
import { defineRoute, type RouteSpec } from './route.js';

/** Most spec documents one POST takes: larger submissions go in several calls (or `titan submit -n`). */
export const MAX_JOBS_PER_POST = 1000;
/** Most bytes a request body may hold: MAX_JOBS_PER_POST specs of a few KiB each. */
export const MAX_BODY_BYTES = 8 * 2 ** 20;
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

/** What the job routes take as an id (wider than new ids, so older or hand-made ones still resolve). */
export const ROUTE_JOB_ID = '^[A-Za-z0-9_.-]{1,128}$';
const JobId = Type.Object({ id: Type.String({ pattern: ROUTE_JOB_ID, description: 'job id' }) });

/** A job the token may not see is answered as absent: a team does not learn of another's jobs. */
export function requireVisibleJob(job: Job | undefined, id: string, token: ApiToken | undefined): Job {
  if (!job || (token && !tokenCoversJob(token, job))) throw new TitanError('NotFound', `no job ${id} (see titan list)`);
  return job;
}

/** `state=Pending,Running&queue=a&label=k=v&q=text` over the cache, newest first, a page at a time. */
export function selectJobPage(
  jobs: Iterable<{ value: Job }>,
  filter: { states?: readonly string[]; queues?: readonly string[]; labels?: Record<string, string>; text?: string; token?: ApiToken },
  limit: number,
  cursor: string | undefined,
): { jobs: Job[]; nextCursor: string | null } {
  const out: Job[] = [];
  const text = filter.text?.toLowerCase();
  let started = cursor === undefined;
  for (const { value: job } of jobs) {
    if (!started) {
      started = job.id === cursor;
      continue;
    }
    if (filter.states && !filter.states.includes(job.state)) continue;
    if (filter.queues && !filter.queues.includes(queueOf(job))) continue;
    if (filter.token && !tokenCoversJob(filter.token, job)) continue;
    if (filter.labels && Object.entries(filter.labels).some(([k, v]) => job.labels[k] !== v)) continue;
    if (text && !job.id.toLowerCase().includes(text) && !job.name.toLowerCase().includes(text)) continue;
    if (out.length === limit) return { jobs: out, nextCursor: out[out.length - 1].id };
    out.push(job);
  }
  return { jobs: out, nextCursor: null };
}

function parseLabels(raw: string | string[] | undefined): Record<string, string> | undefined {
  if (raw === undefined) return undefined;
  const labels: Record<string, string> = {};
  for (const pair of Array.isArray(raw) ? raw : [raw]) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalidInput('label', `"${pair}" is not KEY=VALUE`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}

/** Validates every document before anything is written; a field at fault is named with its document's index. */
function planDocuments(body: unknown, token: ApiToken | undefined): { plans: SubmitPlan[]; many: boolean } {
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
  const single = plans.filter((p) => !p.gang).flatMap((p) => p.jobs);
  if (single.length > 0) await store.createJobs(single);
  // Each gang in one transaction of its own: all of its replicas or none.
  for (const plan of plans) if (plan.gang) await store.createJobs(plan.jobs, { atomic: true });
}

export function jobRoutes(cache: ApiCache, store: Store): RouteSpec[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/jobs',
      tag: 'jobs',
      summary: 'Submit a job (a spec document, as titan submit -f takes), a gang (replicas), or a list of them',
      permission: 'submit',
      body: Type.Union([SpecDocumentSchema, Type.Array(SpecDocumentSchema, { maxItems: MAX_JOBS_PER_POST })]),
      async handler({ body, token, reply }) {
        const { plans, many } = planDocuments(body, token);
        const ids = plans.flatMap((p) => p.jobs.map((j) => j.id));
        const before = cache.versionsOf(cache.jobs, ids);
        await submit(store, plans);
        await cache.settle('jobs', () => cache.changed(cache.jobs, before));
        void reply.code(201);
        if (many) return { jobs: plans.flatMap((p) => p.jobs) };
        const plan = plans[0];
        return plan.gang ? { gang: plan.gang, jobs: plan.jobs } : plan.jobs[0];
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/jobs',
      tag: 'jobs',
      summary: 'List jobs, newest first, a page at a time',
      permission: 'read',
      blocking: true,
      query: Type.Object({
        state: Type.Optional(Type.String({ description: `states, comma-separated: ${JOB_STATES.join(',')}` })),
        queue: Type.Optional(Type.String({ description: 'queues, comma-separated' })),
        label: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], { description: 'KEY=VALUE; repeat for several' })),
        q: Type.Optional(Type.String({ description: 'text in the id or name' })),
        limit: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: `jobs per page (default ${DEFAULT_LIST_LIMIT}, at most ${MAX_LIST_LIMIT})` })),
        cursor: Type.Optional(Type.String({ description: 'nextCursor of the previous page' })),
        ...BlockingQuery,
      }),
      async handler({ query, token, reply }) {
        const limit = query.limit === undefined ? DEFAULT_LIST_LIMIT : parsePositiveInteger(query.limit, 'limit');
        if (limit > MAX_LIST_LIMIT) throw invalidInput('limit', `at most ${MAX_LIST_LIMIT}; follow nextCursor for more`);
        const filter = {
          ...(query.state !== undefined ? { states: parseStatusFilter(query.state, 'state') } : {}),
          ...(query.queue !== undefined ? { queues: query.queue.split(',').map((q) => q.trim()).filter((q) => q !== '') } : {}),
          ...(query.label !== undefined ? { labels: parseLabels(query.label) } : {}),
          ...(query.q !== undefined && query.q !== '' ? { text: query.q } : {}),
          token,
        };
        const key = `jobs?${JSON.stringify([query.state, query.queue, query.label, query.q, limit, query.cursor])}|${scopeKey(token)}`;
        return sharedAnswer(cache, ['jobs'], query, reply, key, () => selectJobPage(cache.jobsNewestFirst(), filter, limit, query.cursor));
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/jobs/:id',
      tag: 'jobs',
      summary: "A job's state and details (as titan status --output json), with its gang's replicas",
      permission: 'read',
      blocking: true,
      params: JobId,
      query: Type.Object({ ...BlockingQuery }),
      async handler({ params, query, token, reply }) {
        requireVisibleJob(cache.jobs.get(params.id)?.value, params.id, token);
        return sharedAnswer(cache, ['jobs'], query, reply, `job/${params.id}|${scopeKey(token)}`, () => {
          const job = requireVisibleJob(cache.jobs.get(params.id)?.value, params.id, token);
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
      summary: 'Cancel a job: at once if pending, else its worker stops it (SIGTERM, then SIGKILL after grace)',
      permission: 'submit',
      params: JobId,
      query: Type.Object({ grace: Type.Optional(Type.String({ description: 'time to stop before the kill (default 10s)' })) }),
      async handler({ params, query, token }) {
        const graceMs = parseGrace(query.grace);
        requireVisibleJob((await store.getJob(params.id))?.value, params.id, token);
        const before = cache.versionsOf(cache.jobs, [params.id]);
        const { job } = await cancelJob(store, params.id, graceMs);
        await cache.settle('jobs', () => cache.changed(cache.jobs, before));
        return job;
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/jobs/:id/retry',
      tag: 'jobs',
      summary: 'Put a Failed or Cancelled job back in the queue (history kept)',
      permission: 'submit',
      params: JobId,
      async handler({ params, token }) {
        requireVisibleJob((await store.getJob(params.id))?.value, params.id, token);
        const before = cache.versionsOf(cache.jobs, [params.id]);
        const job = await store.retryJob(params.id);
        await cache.settle('jobs', () => cache.changed(cache.jobs, before));
        return job;
      },
    }),
  ];
}
