import { Type, type Static } from '@sinclair/typebox';
import { JOB_STATES, type JobState } from '../../pkg/model/job.js';
import { queueOf } from '../../pkg/model/queue.js';
import { tokenCoversJob, type ApiToken } from '../../pkg/model/token.js';
import { PENDING_REASON_KINDS, pendingReasonKind, type PendingReasonKind } from '../scheduler/reasons.js';
import { BlockingQuery, scopeKey, sharedAnswer } from './blocking.js';
import type { ApiCache } from './cache.js';
import { defineRoute, type RouteSpec } from './route.js';

const StateCounts = Type.Object(Object.fromEntries(JOB_STATES.map((s) => [s, Type.Integer()])) as Record<JobState, ReturnType<typeof Type.Integer>>);

export const OverviewSchema = Type.Object({
  total: Type.Integer({ description: 'jobs the token can see' }),
  byState: StateCounts,
  byQueue: Type.Array(Type.Object({ queue: Type.String(), byState: StateCounts })),
  pendingByReason: Type.Array(
    Type.Object({
      kind: Type.Union(PENDING_REASON_KINDS.map((k) => Type.Literal(k))),
      count: Type.Integer(),
      example: Type.Optional(Type.Object({ jobId: Type.String(), reason: Type.String() }, { description: 'the newest job pending for this kind of reason' })),
    }),
    { description: 'pending jobs by what they wait for (the kinds of internal/scheduler/reasons.ts), most first' },
  ),
});

export type Overview = Static<typeof OverviewSchema>;

const zeroCounts = (): Record<JobState, number> => Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;

/** Counts for the dashboard's overview, from the cache: one pass over the jobs, however many. */
export function overviewRoutes(cache: ApiCache): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/overview',
      tag: 'jobs',
      summary: 'Jobs by state and by queue, and pending jobs by kind of reason',
      permission: 'read',
      blocking: true,
      query: Type.Object({ ...BlockingQuery }),
      response: OverviewSchema,
      async handler({ query, token, reply }) {
        return sharedAnswer(cache, ['jobs'], query, reply, `overview|${scopeKey(token)}`, () => overview(cache, token));
      },
    }),
  ];
}

function overview(cache: ApiCache, token: ApiToken | undefined): Overview {
  const now = Date.now();
  const byState = zeroCounts();
  const byQueue = new Map<string, Record<JobState, number>>();
  const reasons = new Map<PendingReasonKind, Overview['pendingByReason'][number]>();
  let total = 0;
  for (const { value: job } of cache.jobsNewestFirst()) {
    if (token && !tokenCoversJob(token, job)) continue;
    total++;
    byState[job.state]++;
    const queue = queueOf(job);
    let counts = byQueue.get(queue);
    if (!counts) byQueue.set(queue, (counts = zeroCounts()));
    counts[job.state]++;
    if (job.state !== 'Pending') continue;
    const kind = pendingReasonKind(job.reason, job.retryAt, now);
    const row = reasons.get(kind);
    if (row) row.count++;
    else reasons.set(kind, { kind, count: 1, ...(job.reason !== undefined ? { example: { jobId: job.id, reason: job.reason } } : {}) });
  }
  return {
    total,
    byState,
    byQueue: [...byQueue].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([queue, counts]) => ({ queue, byState: counts })),
    pendingByReason: [...reasons.values()].sort((a, b) => b.count - a.count),
  };
}
