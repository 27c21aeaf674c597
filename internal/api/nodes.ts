import { Type } from '@sinclair/typebox';
import { TitanError } from '../../pkg/model/errors.js';
import type { Assignment } from '../../pkg/model/assignment.js';
import { DEFAULT_QUEUE } from '../../pkg/model/queue.js';
import { tokenCoversQueue, type ApiToken } from '../../pkg/model/token.js';
import type { Store } from '../../pkg/store/store.js';
import { nodesJsonView, placementInfoOf, summarizeNodes, type PlacementInfo } from '../cli/nodes.js';
import { BlockingQuery, blockUntilNewer } from './blocking.js';
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

async function placementInfo(store: Store): Promise<PlacementInfo> {
  try {
    return placementInfoOf(await store.getLeader());
  } catch {
    return {}; // unknown leader: the nodes are still worth showing
  }
}

/** `titan nodes --output json`, plus each node's GPU shares; a queue-scoped token sees only its queues' job ids. */
function nodesView(cache: ApiCache, token: ApiToken | undefined, info: PlacementInfo) {
  const visible = (a: Assignment): boolean => !token || tokenCoversQueue(token, a.queue ?? DEFAULT_QUEUE);
  const assignments = [...cache.assignments.values()].map((a) => a.value);
  const nodes = summarizeNodes([...cache.nodes.values()].map((n) => n.value), assignments);
  return nodesJsonView(nodes, info).map((node) => {
    const own = assignments.filter((a) => a.nodeId === node.id && visible(a));
    return { ...node, jobIds: own.map((a) => a.jobId).sort(), gpuShares: gpuSharesOf(own), leader: info.leader ?? null };
  });
}

/** One element of `GET /v1/nodes`. */
export type NodeView = ReturnType<typeof nodesView>[number];

export function nodeRoutes(cache: ApiCache, store: Store): RouteSpec[] {
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
        await blockUntilNewer(cache, ['nodes', 'assignments'], query, reply);
        return nodesView(cache, token, await placementInfo(store));
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
        await blockUntilNewer(cache, ['nodes', 'assignments'], query, reply);
        const node = nodesView(cache, token, await placementInfo(store)).find((n) => n.id === params.id);
        if (!node) throw new TitanError('NotFound', `node ${params.id} left the cluster`);
        return node;
      },
    }),
  ];
}
