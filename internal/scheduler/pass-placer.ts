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

/** Shape keys by job: a queued job is offered to every pass until placed, and its shape never changes. */
const shapeKeys = new WeakMap<JobRequest, string>();

function shapeKey(job: JobRequest): string {
  let key = shapeKeys.get(job);
  if (key === undefined) {
    const r = job.resources;
    const selector = job.nodeSelector ? JSON.stringify(job.nodeSelector) : '';
    key = `${job.kind}|${r.cpu}|${r.memory}|${r.gpuMilli}|${job.gpuModels?.join('|') ?? ''}|${selector}`;
    shapeKeys.set(job, key);
  }
  return key;
}

/** Shapes a placer keeps a memo for: a pass of many distinct shapes keeps the first ones, then scans as without. */
const MAX_MEMOS = 256;

/**
 * What a placer learnt of each node (by its index) for one job shape, as of
 * the node's version: whether it fitted, and its score. Valid while the node
 * keeps that version and the policy its scoresVersion: fitting and scoring
 * read only the node's state and the job's shape (the placer's shape key).
 */
class ShapeMemo {
  /** The node's version when recorded; -1: nothing recorded. */
  readonly version: Float64Array;
  readonly fits: Uint8Array;
  readonly score: Float64Array;

  constructor(
    nodes: number,
    public policyVersion: number,
  ) {
    this.version = new Float64Array(nodes).fill(-1);
    this.fits = new Uint8Array(nodes);
    this.score = new Float64Array(nodes);
  }

  /** Forgets every node: the policy's scores changed. */
  reset(policyVersion: number): void {
    this.version.fill(-1);
    this.policyVersion = policyVersion;
  }

  set(at: number, version: number, fits: boolean, score: number): void {
    this.version[at] = version;
    this.fits[at] = fits ? 1 : 0;
    this.score[at] = score;
  }
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
 * - Whether a node fits a shape, and its score, are kept per shape at the
 *   node's version (ShapeMemo): a scan asks again only of nodes that changed.
 */
export class PassPlacer {
  private readonly sampleSize: number;
  private offset = 0;
  private last: { shape: string; node: NodeView } | undefined;
  private readonly unplaceable = new Map<string, NoPlacement>();
  private readonly memos = new Map<string, ShapeMemo>();
  /** Shapes scanned once: a memo is made at a shape's second scan, so a pass of one-off shapes allocates none. */
  private readonly scannedOnce = new Set<string>();

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
    const { result, node } = this.scan(job, shape);
    if (node) this.last = { shape, node };
    else this.unplaceable.set(shape, result as NoPlacement);
    return result;
  }

  /** The policy's device choice where it has one, else the lowest-index fit. */
  private devicesFor(job: JobRequest, node: NodeView): string[] {
    const indexes = this.policy.chooseGpuIndexes?.(job, node) ?? chooseGpuIndexes(job, node) ?? [];
    return indexes.map((i) => gpuDeviceId(node.gpus[i]));
  }

  /** The shape's memo, fresh if the policy's scores changed since; none at its first scan, nor past MAX_MEMOS shapes. */
  private memoFor(shape: string): ShapeMemo | undefined {
    const version = this.policy.scoresVersion?.() ?? 0;
    let memo = this.memos.get(shape);
    if (memo === undefined) {
      if (this.memos.size >= MAX_MEMOS) return undefined;
      if (!this.scannedOnce.has(shape)) {
        this.scannedOnce.add(shape);
        return undefined;
      }
      memo = new ShapeMemo(this.nodes.length, version);
      this.memos.set(shape, memo);
    } else if (memo.policyVersion !== version) {
      memo.reset(version);
    }
    return memo;
  }

  private scan(job: JobRequest, shape: string): { result: PlacementChoice | NoPlacement; node?: NodeView } {
    const nodes = this.nodes;
    const n = nodes.length;
    const memo = this.memoFor(shape);
    let best: NodeView | undefined;
    let bestScore = -Infinity;
    let feasible = 0;
    const start = this.sampleSize < n ? this.offset : 0;
    let considered = 0;
    for (let i = start; considered < n && feasible < this.sampleSize; considered++) {
      const node = nodes[i];
      const at = i;
      if (++i === n) i = 0;
      let score: number;
      if (memo !== undefined && memo.version[at] === node.version) {
        if (memo.fits[at] === 0) continue;
        score = memo.score[at];
      } else {
        const fits = fitsNow(job, node);
        score = fits ? this.policy.score(job, node) : -Infinity;
        memo?.set(at, node.version, fits, score);
        if (!fits) continue;
      }
      feasible++;
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
