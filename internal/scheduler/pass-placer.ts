import { gpuDeviceId } from '../../pkg/model/index.js';
import { chooseGpuIndexes } from './allocation.js';
import { firstRejection, fitsNow } from './feasibility.js';
import type { Policy } from './policy.js';
import type { JobRequest, NodeView, NoPlacement, PlacementChoice } from './types.js';

/**
 * How many feasible nodes to score before choosing, as Kubernetes'
 * percentageOfNodesToScore: every node in small clusters, then a share that
 * shrinks from 50% towards 5% as the cluster grows, never fewer than 100.
 */
export function feasibleNodesToScore(nodeCount: number): number {
  if (nodeCount <= 100) return nodeCount;
  const percent = Math.max(5, 50 - nodeCount / 125);
  return Math.max(100, Math.floor((nodeCount * percent) / 100));
}

function shapeKey(job: JobRequest): string {
  const r = job.resources;
  const selector = job.nodeSelector ? JSON.stringify(job.nodeSelector) : '';
  return `${job.kind}|${r.cpu}|${r.memory}|${r.gpuMilli}|${job.gpuModels?.join('|') ?? ''}|${selector}`;
}

/**
 * Places the jobs of one scheduling pass over a fixed list of nodes. The
 * caller must allocate every returned placement on its node before asking
 * for the next one. Two shortcuts keep a pass near-linear:
 *
 * - For a policy whose score never drops as a node fills (binpack), a job of
 *   the same shape as the last placed job goes to the same node while it
 *   fits: only that node changed since, and its score only rose. This is
 *   exactly what a full scan would choose.
 * - Otherwise the scan starts at a rotating offset and stops once enough
 *   feasible nodes were scored (feasibleNodesToScore); a job that fits
 *   nowhere is always checked against every node, so its reasons are complete.
 * - A shape that fitted nowhere fits nowhere for the rest of the pass
 *   (allocations only grow during a pass): its answer is reused.
 */
export class PassPlacer {
  private readonly sampleSize: number;
  private offset = 0;
  private last: { shape: string; node: NodeView } | undefined;
  private readonly unplaceable = new Map<string, NoPlacement>();

  constructor(
    private readonly nodes: readonly NodeView[],
    private readonly policy: Policy,
    options: { sampleSize?: number } = {},
  ) {
    this.sampleSize = options.sampleSize ?? feasibleNodesToScore(nodes.length);
  }

  place(job: JobRequest): PlacementChoice | NoPlacement {
    const shape = shapeKey(job);
    const failed = this.unplaceable.get(shape);
    if (failed) return failed;
    const last = this.last;
    if (last?.shape === shape && this.policy.isMonotone(job) && fitsNow(job, last.node)) {
      return { nodeId: last.node.id, gpuDevices: this.devicesFor(job, last.node), score: this.policy.score(job, last.node) };
    }
    const { result, node } = this.scan(job);
    if (node) this.last = { shape, node };
    else this.unplaceable.set(shape, result as NoPlacement);
    return result;
  }

  /** The policy's device choice where it has one, else the lowest-index fit. */
  private devicesFor(job: JobRequest, node: NodeView): string[] {
    const indexes = this.policy.chooseGpuIndexes?.(job, node) ?? chooseGpuIndexes(job, node) ?? [];
    return indexes.map((i) => gpuDeviceId(node.gpus[i]));
  }

  private scan(job: JobRequest): { result: PlacementChoice | NoPlacement; node?: NodeView } {
    const nodes = this.nodes;
    const n = nodes.length;
    let best: NodeView | undefined;
    let bestScore = -Infinity;
    let feasible = 0;
    const start = this.sampleSize < n ? this.offset : 0;
    let considered = 0;
    for (let i = start; considered < n && feasible < this.sampleSize; considered++) {
      const node = nodes[i];
      if (++i === n) i = 0;
      if (!fitsNow(job, node)) continue;
      feasible++;
      const score = this.policy.score(job, node);
      if (score > bestScore || (score === bestScore && best !== undefined && node.id < best.id)) {
        best = node;
        bestScore = score;
      }
    }
    this.offset = (start + considered) % n;
    if (!best) return { result: { rejected: this.rejections(job, start, considered), nodesConsidered: considered } };
    return { result: { nodeId: best.id, gpuDevices: this.devicesFor(job, best), score: bestScore }, node: best };
  }

  /** Why each of `count` nodes from `start` turned the job down: asked only once none took it, so the scan itself needs no reasons. */
  private rejections(job: JobRequest, start: number, count: number): NoPlacement['rejected'] {
    const rejected: NoPlacement['rejected'] = {};
    for (let k = 0; k < count; k++) {
      const reason = firstRejection(job, this.nodes[(start + k) % this.nodes.length]);
      if (reason) rejected[reason] = (rejected[reason] ?? 0) + 1;
    }
    return rejected;
  }
}
