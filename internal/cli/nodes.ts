import type { NodeInfo } from '../../pkg/model/node.js';
import { addResources, formatGpu, ZERO_RESOURCES, type Resources } from '../../pkg/model/resources.js';
import type { Assignment } from '../../pkg/model/assignment.js';
import { CorruptRecordError, records } from '../../pkg/store/codec.js';
import type { LeaderInfo, ReadResult, Store } from '../../pkg/store/store.js';
import { ageSince, formatCpu, formatKeyValues, formatMemory, renderTable } from './format.js';

/** `titan nodes` row / JSON element: the registration plus what is placed on it. */
export type NodeUsage = NodeInfo & {
  allocated: Resources;
  /** Number of assignments (running or starting attempts) on the node. */
  jobs: number;
  jobIds: string[];
};

/** Joins nodes with their assignments; assignments of nodes that are gone are ignored. */
export function summarizeNodes(nodes: readonly NodeInfo[], assignments: readonly Assignment[]): NodeUsage[] {
  const byNode = new Map<string, Assignment[]>();
  for (const a of assignments) {
    const list = byNode.get(a.nodeId);
    if (list) list.push(a);
    else byNode.set(a.nodeId, [a]);
  }
  return [...nodes]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((node) => {
      const held = byNode.get(node.id) ?? [];
      return {
        ...node,
        allocated: held.reduce((sum, a) => addResources(sum, a.resources), { ...ZERO_RESOURCES }),
        jobs: held.length,
        jobIds: held.map((a) => a.jobId).sort(),
      };
    });
}

export async function listNodeUsage(store: Store): Promise<{ nodes: NodeUsage[]; skipped: ReadResult[] }> {
  const assignments: Assignment[] = [];
  const [nodes, assigned] = await Promise.all([
    store.listNodes(),
    // Paged: a busy cluster can hold more assignments than one gRPC message carries.
    store.scan(store.keys.collection('assign'), records.assignment, (items) => void assignments.push(...items.map((i) => i.value))),
  ]);
  return { nodes: summarizeNodes(nodes.items.map((i) => i.value), assignments), skipped: [nodes, assigned] };
}

/** Which master leads and the placement policy it places with, as the leader key says. */
export interface PlacementInfo {
  /** Undefined when no master leads, or the leader did not publish its policy. */
  policy?: string;
  leader?: string;
}

/** A corrupt leader record reads as an unknown policy; the leader that wrote it rewrites it when it next campaigns. */
export async function readPlacementInfo(store: Pick<Store, 'getLeader'>): Promise<PlacementInfo> {
  try {
    return placementInfoOf(await store.getLeader());
  } catch (err) {
    if (err instanceof CorruptRecordError) return {};
    throw err;
  }
}

export function placementInfoOf(leader: LeaderInfo | undefined): PlacementInfo {
  if (!leader) return {};
  return { leader: leader.id, ...(leader.policy ? { policy: leader.policy } : {}) };
}

/** The first line of `titan nodes`: "placement policy: fgd (leader master-abc)". */
export function describePlacement(info: PlacementInfo): string {
  if (info.leader === undefined) return 'placement policy: unknown (no master leads)';
  return `placement policy: ${info.policy ?? 'unknown'} (leader ${info.leader})`;
}

/**
 * `titan nodes --output json`: still the array of nodes scripts already read,
 * each also carrying the cluster's placement policy (null when unknown).
 */
export function nodesJsonView(nodes: readonly NodeUsage[], info: PlacementInfo): (NodeUsage & { policy: string | null })[] {
  return nodes.map((n) => ({ ...n, policy: info.policy ?? null }));
}

/** "0.25/8 V100M16": GPUs allocated/capacity, then the node's distinct GPU models. */
export function formatGpuUsage(node: NodeUsage): string {
  const usage = `${formatGpu(node.allocated.gpuMilli)}/${formatGpu(node.capacity.gpuMilli)}`;
  const models = [...new Set(node.gpus.map((g) => g.model.trim()).filter((m) => m !== ''))];
  return models.length > 0 ? `${usage} ${models.join(',')}` : usage;
}

export function renderNodeTable(nodes: readonly NodeUsage[], now: number = Date.now()): string {
  return renderTable(
    ['NODE', 'CPU', 'MEMORY', 'GPU', 'JOBS', 'EXECUTORS', 'LABELS', 'AGE'],
    nodes.map((n) => [
      n.id,
      `${formatCpu(n.allocated.cpu)}/${formatCpu(n.capacity.cpu)}`,
      `${formatMemory(n.allocated.memory)}/${formatMemory(n.capacity.memory)}`,
      formatGpuUsage(n),
      String(n.jobs),
      n.executors.length > 0 ? n.executors.join(',') : '-',
      formatKeyValues(n.labels),
      ageSince(n.registeredAt, now),
    ]),
  );
}
