import { Type, type Static } from '@sinclair/typebox';
import { documentChecker } from '../../pkg/model/document.js';
import { isFinal } from '../../pkg/model/job.js';
import { queueOf, type QueueInput } from '../../pkg/model/queue.js';
import { tokenCoversQueue } from '../../pkg/model/token.js';
import type { Store } from '../../pkg/store/store.js';
import { createQueue, deleteQueue, summarizeQueues, updateQueue } from '../cli/queues.js';
import { BlockingQuery, scopeKey, sharedAnswer } from './blocking.js';
import type { ApiCache } from './cache.js';
import { defineRoute, type RouteSpec } from './route.js';

const Amount = Type.Union([Type.String(), Type.Number()]);
const amount = (description: string) => Type.Optional({ ...Amount, description });

/** The fields of `titan queue create|update`, as JSON: amounts as the CLI takes them (8, 500m, 32Gi, 0.5; `none` removes on update). */
const QueueFieldsSchema = Type.Object(
  {
    parent: Type.Optional(Type.String({ description: 'a top-level queue this one belongs to (none: top-level, on update)' })),
    quotaCpu: amount('guaranteed CPU'),
    quotaMem: amount('guaranteed memory'),
    quotaGpu: amount('guaranteed GPUs'),
    limitCpu: amount('hard cap on CPU'),
    limitMem: amount('hard cap on memory'),
    limitGpu: amount('hard cap on GPUs'),
    weight: amount('share of idle capacity lent beyond quotas'),
  },
  { additionalProperties: false },
);
const NewQueueSchema = Type.Composite([Type.Object({ name: Type.String() }), QueueFieldsSchema], { additionalProperties: false });

/** JSON numbers become the text the CLI would pass: one parser (buildQueue) for both. */
function queueInput(fields: Static<typeof QueueFieldsSchema>): QueueInput {
  const input: QueueInput = {};
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) input[key as keyof QueueInput] = String(value);
  return input;
}

const QueueName = Type.Object({ name: Type.String({ description: 'queue name' }) });

export function queueRoutes(cache: ApiCache, store: Store): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/queues',
      tag: 'queues',
      summary: 'Queues as a tree: quota, limit, weight, allocated, pending and fair share (as titan queue list)',
      permission: 'read',
      blocking: true,
      query: Type.Object({ ...BlockingQuery }),
      async handler({ query, token, reply }) {
        return sharedAnswer(cache, ['queues', 'jobs', 'assignments', 'nodes'], query, reply, `queues|${scopeKey(token)}`, () => {
          const jobs = [...cache.jobs.values()]
            .map((j) => j.value)
            .filter((j) => !isFinal(j.state))
            .map((j) => ({ id: j.id, queue: queueOf(j), state: j.state, resources: j.resources }));
          const rows = summarizeQueues(
            [...cache.queues.values()].map((q) => q.value),
            [...cache.nodes.values()].map((n) => n.value),
            [...cache.assignments.values()].map((a) => a.value),
            jobs,
          );
          return token ? rows.filter((q) => tokenCoversQueue(token, q.name)) : rows;
        });
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/queues',
      tag: 'queues',
      summary: 'Create a queue',
      permission: 'manage-queues',
      body: NewQueueSchema,
      async handler({ body, reply }) {
        const { name, ...fields } = checkNewQueue(body, 'request body');
        const queue = await createQueue(store, name, queueInput(fields));
        await cache.settle('queues', () => cache.queues.has(queue.name));
        void reply.code(201);
        return queue;
      },
    }),
    defineRoute({
      method: 'PATCH',
      url: '/v1/queues/:name',
      tag: 'queues',
      summary: "Change a queue's quota, limit, weight or parent; absent fields stay",
      permission: 'manage-queues',
      params: QueueName,
      body: QueueFieldsSchema,
      async handler({ params, body }) {
        const before = cache.versionsOf(cache.queues, [params.name]);
        const queue = await updateQueue(store, params.name, queueInput(checkQueueFields(body, 'request body')));
        await cache.settle('queues', () => cache.changed(cache.queues, before));
        return queue;
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/queues/:name',
      tag: 'queues',
      summary: 'Delete a queue (refused while it has child queues or jobs that have not ended)',
      permission: 'manage-queues',
      params: QueueName,
      async handler({ params }) {
        await deleteQueue(store, params.name);
        await cache.settle('queues', () => !cache.queues.has(params.name));
        return { deleted: params.name };
      },
    }),
  ];
}

const checkQueueFields = documentChecker(QueueFieldsSchema);
const checkNewQueue = documentChecker(NewQueueSchema);
