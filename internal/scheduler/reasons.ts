import { formatGpu } from '../../pkg/model/index.js';
import { fitsEmptyNode, freeGpuMilli, hasAllowedModel, matchesSelector } from './feasibility.js';
import type { JobRequest, NodeView, NoPlacement, RejectReason } from './types.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

export function formatCpu(milli: number): string {
  return milli % 1000 === 0 ? `${milli / 1000} cores` : `${milli}m CPU`;
}

export function formatBytes(bytes: number): string {
  return bytes >= GiB ? `${+(bytes / GiB).toFixed(1)}GiB` : `${+(bytes / MiB).toFixed(1)}MiB`;
}

const REASON_NOUNS: Record<RejectReason, string> = {
  executor: 'an executor',
  selector: 'matching labels',
  gpuModel: 'the GPU model',
  cpu: 'cpu',
  memory: 'memory',
  gpu: 'gpu',
};

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function maxOf(nodes: readonly NodeView[], value: (n: NodeView) => number): number {
  let max = 0;
  for (const n of nodes) max = Math.max(max, value(n));
  return max;
}

/** "needs X, largest free is Y" for one resource, measured on free or on total capacity. */
function shortfall(reason: RejectReason, job: JobRequest, nodes: readonly NodeView[], total: boolean): string {
  const r = job.resources;
  switch (reason) {
    case 'cpu': {
      const best = maxOf(nodes, (n) => n.capacity.cpu - (total ? 0 : n.allocated.cpu));
      return `needs ${formatCpu(r.cpu)}, ${total ? 'the largest node has' : 'most free on a node is'} ${formatCpu(best)}`;
    }
    case 'memory': {
      const best = maxOf(nodes, (n) => n.capacity.memory - (total ? 0 : n.allocated.memory));
      return `needs ${formatBytes(r.memory)} memory, ${total ? 'the largest node has' : 'most free on a node is'} ${formatBytes(best)}`;
    }
    case 'gpu': {
      const best = maxOf(nodes, (n) => (total ? n.gpus.length * 1000 : freeGpuMilli(n)));
      return `needs ${formatGpu(r.gpuMilli)} GPU${r.gpuMilli > 1000 ? "s" : ""}, ${total ? 'the largest node has' : 'most free on a node is'} ${formatGpu(best)}`;
    }
    case 'gpuModel':
      return `needs a GPU of model ${job.gpuModels?.join(' or ')}`;
    case 'selector':
      return `needs a node labelled ${Object.entries(job.nodeSelector ?? {}).map(([k, v]) => `${k}=${v}`).join(',')}`;
    case 'executor':
      return job.kind === 'docker' ? 'needs a node with a Docker engine' : 'needs a node that runs shell jobs';
  }
}

/** Which resource makes the job too big for a node even when that node is empty. */
function neverFitReason(job: JobRequest, nodes: readonly NodeView[]): RejectReason {
  if (!nodes.some((n) => n.executors.includes(job.kind))) return 'executor';
  let able = nodes.filter((n) => n.executors.includes(job.kind));
  if (!able.some((n) => matchesSelector(job, n))) return 'selector';
  able = able.filter((n) => matchesSelector(job, n));
  if (!able.some((n) => hasAllowedModel(job, n))) return 'gpuModel';
  if (!able.some((n) => job.resources.gpuMilli <= n.gpus.length * 1000)) return 'gpu';
  if (!able.some((n) => job.resources.cpu <= n.capacity.cpu)) return 'cpu';
  return 'memory';
}

/**
 * The reason a pending job shows: whether it waits for capacity to free up or
 * can never run on the nodes registered now, and how many nodes were turned
 * down for what.
 */
export function pendingReason(job: JobRequest, result: NoPlacement, nodes: readonly NodeView[]): string {
  if (nodes.length === 0) return 'waiting for a node: no worker is registered';
  if (!nodes.some((n) => fitsEmptyNode(job, n))) {
    const reason = neverFitReason(job, nodes);
    const waitingFor = reason === 'selector' || reason === 'gpuModel' || reason === 'executor' ? 'such a node' : 'a larger node';
    return `no registered node can ever run it: ${shortfall(reason, job, nodes, true)}; waiting for ${waitingFor}`;
  }
  const counts = Object.entries(result.rejected) as [RejectReason, number][];
  counts.sort((a, b) => b[1] - a[1]);
  const main = counts[0]?.[0] ?? 'cpu';
  const detail = counts.map(([reason, n]) => `${plural(n, 'node')} short of ${REASON_NOUNS[reason]}`);
  return `waiting for capacity: ${shortfall(main, job, nodes, false)} (${detail.join(', ')})`;
}

/** A task held back by its array's `%max`: it waits for a sibling to end, not for capacity. */
export function arrayLimitReason(arrayId: string, max: number): string {
  return `ArrayLimit: at most ${max} task${max === 1 ? '' : 's'} of array ${arrayId} run at once; waiting for one to end`;
}

/**
 * What a pending job waits for, without its figures: a small fixed set (a
 * metric label, a dashboard's grouping), never the reason's text. The
 * prefixes are those the scheduling pass writes (pendingReason above,
 * gang.ts, the queue limit, array limits and gang restarts in internal/scheduler/pass.ts).
 */
export const PENDING_REASON_KINDS = ['none', 'backoff', 'no-node', 'never-fits', 'capacity', 'queue-limit', 'array-limit', 'gang', 'dependency', 'requeued'] as const;
export type PendingReasonKind = (typeof PENDING_REASON_KINDS)[number];

const REASON_KIND_PREFIXES: readonly (readonly [string, PendingReasonKind])[] = [
  ['waiting for a node', 'no-node'],
  ['no registered node can ever run it', 'never-fits'],
  ['waiting for capacity', 'capacity'],
  ['waiting for queue ', 'queue-limit'],
  ['ArrayLimit', 'array-limit'],
  ['gang ', 'gang'],
  ['Gang restart', 'gang'],
  // Dependency: waits for ... (and DependencyNeverSatisfied until the leader cancels it): pkg/model/dependency.ts.
  ['Dependency', 'dependency'],
];

/**
 * The kind of a pending job's reason: `none` before a pass wrote one,
 * `backoff` while a retry backoff runs (`retryAt` ahead of `now`), and
 * `requeued` for a reason left from the end of an earlier attempt (evicted,
 * node lost, retried, `titan retry`) that no pass has replaced yet.
 */
export function pendingReasonKind(reason: string | undefined, retryAt?: number, now = Date.now()): PendingReasonKind {
  if (retryAt !== undefined && retryAt > now) return 'backoff';
  if (reason === undefined) return 'none';
  for (const [prefix, kind] of REASON_KIND_PREFIXES) if (reason.startsWith(prefix)) return kind;
  return 'requeued';
}
