import { Type } from '@sinclair/typebox';
import { TitanError } from '../../pkg/model/errors.js';
import type { Assignment } from '../../pkg/model/assignment.js';
import { DEFAULT_QUEUE } from '../../pkg/model/queue.js';
import { tokenCoversQueue, type ApiToken } from '../../pkg/model/token.js';
import { nodesJsonView, placementInfoOf, summarizeNodes } from '../cli/nodes.js';
import { BlockingQuery, scopeKey, sharedAnswer } from './blocking.js';
import type { ApiCache } from './cache.js';
import { defineRoute, type RouteSpec } from './route.js';

/** One job's part of one GPU device: a whole GPU is 1000, a 0.25 share 250. */
export interface GpuShare {
  device: string;
  jobId: string;
  gpuMilli: number;
}

/** The devices' shares held by the assignments (a job with n whole GPUs holds 1000 of each). */
export function gpuSharesOf(assignments: readonly Assignment[]): GpuShare[] {
  return assignments.flatMap((a) =>
    a.gpuDevices.map((device) => ({ device, jobId: a.jobId, gpuMilli: Math.round(a.resources.gpuMilli / a.gpuDevices.length) })),
  );
}

/** `titan nodes --output json`, plus each node's GPU shares; a queue-scoped token sees only its queues' job ids. */
function nodesView(cache: ApiCache, token: ApiToken | undefined) {
  const info = placementInfoOf(cache.leader.get('')?.value);
  const visible = (a: Assignment): boolean => !token || tokenCoversQueue(token, a.queue ?? DEFAULT_QUEUE);
  const assignments = [...cache.assignments.values()].map((a) => a.value);
  // Grouped once: a node's share of the assignments, not a scan of all of them per node.
  const visibleByNode = new Map<string, Assignment[]>();
  for (const a of assignments) {
    if (!visible(a)) continue;
    const list = visibleByNode.get(a.nodeId);
    if (list) list.push(a);
    else visibleByNode.set(a.nodeId, [a]);
  }
  const nodes = summarizeNodes([...cache.nodes.values()].map((n) => n.value), assignments);
  return nodesJsonView(nodes, info).map((node) => {
    const own = visibleByNode.get(node.id) ?? [];
    return { ...node, jobIds: own.map((a) => a.jobId).sort(), gpuShares: gpuSharesOf(own), leader: info.leader ?? null };
  });
}

/** One element of `GET /v1/nodes`. */
export type NodeView = ReturnType<typeof nodesView>[number];

/** What a node listing is made of: a change to any of these wakes its blocking reads. */
const NODE_TOPICS = ['nodes', 'assignments', 'leader'] as const;

export function nodeRoutes(cache: ApiCache): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/nodes',
      tag: 'nodes',
      summary: 'Worker nodes with capacity, allocation, GPU shares and the placement policy in force',
      permission: 'read',
      blocking: true,
      query: Type.Object({ ...BlockingQuery }),
      async handler({ query, token, reply }) {
        return sharedAnswer(cache, NODE_TOPICS, query, reply, `nodes|${scopeKey(token)}`, () => nodesView(cache, token));
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/nodes/:id',
      tag: 'nodes',
      summary: 'One worker node',
      permission: 'read',
      blocking: true,
      params: Type.Object({ id: Type.String({ description: 'node id' }) }),
      query: Type.Object({ ...BlockingQuery }),
      async handler({ params, query, token, reply }) {
        if (!cache.nodes.has(params.id)) throw new TitanError('NotFound', `no node ${params.id} (see titan nodes)`);
        return sharedAnswer(cache, NODE_TOPICS, query, reply, `node/${params.id}|${scopeKey(token)}`, () => {
          const node = nodesView(cache, token).find((n) => n.id === params.id);
          if (!node) throw new TitanError('NotFound', `node ${params.id} left the cluster`);
          return node;
        });
      },
    }),
  ];
}
