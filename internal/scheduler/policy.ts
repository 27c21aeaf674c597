import { MILLI_PER_GPU, TitanError, gpuShareMilli } from '../../pkg/model/index.js';
import { chooseGpuIndexes } from './allocation.js';
import { freeCapacity, nodeFragmentation } from './fragmentation.js';
import { binpackScore, gpuAvoidanceScore, spreadScore } from './scoring.js';
import type { JobRequest, NodeView } from './types.js';
import { shapeOf, WorkloadMix } from './workload-mix.js';

/**
 * A placement policy: ranks feasible nodes for a job (higher is better).
 * A policy may learn from submissions (observe); each master and each
 * simulation run has its own instance.
 */
export interface Policy {
  readonly name: string;
  readonly description: string;
  score(job: JobRequest, node: NodeView): number;
  /** The score of a node for a job never drops as the node fills up (lets a pass reuse its last choice). */
  readonly monotone: boolean;
  /** Called once for every job submitted, before it is placed. */
  observe(job: JobRequest): void;
}

interface PolicyFactory {
  description: string;
  create: () => Policy;
}

function stateless(name: string, description: string, score: Policy['score'], monotone: boolean): PolicyFactory {
  return { description, create: () => ({ name, description, score, monotone, observe: () => {} }) };
}

const FRAGMENTATION_DESCRIPTION =
  'fragmentation-aware: the node whose free GPUs stay most usable by the recent job mix (FGD), then the fullest GPUs';

/**
 * Fragmentation gradient descent: place a job where it least increases the
 * free GPU that the expected next job could not use. Ties (a job that
 * fragments nothing anywhere) go to the node with the fullest GPUs. Scores are
 * cached per node until the node or the mix changes: a pass scores many
 * jobs of few shapes against nodes that mostly did not change.
 */
/** GPU allocated on the node after placing the job, in [0, 1]: the fragmentation policy's tie-break. */
function gpuFillAfter(job: JobRequest, node: NodeView): number {
  return node.capacity.gpuMilli === 0 ? 0 : (node.allocated.gpuMilli + job.resources.gpuMilli) / node.capacity.gpuMilli;
}

/**
 * Weight of GPU packing against fragmentation growth (in GPUs). Small: it
 * decides between nodes the fragmentation measure finds (nearly) equal.
 */
const GPU_PACKING_WEIGHT = 0.02;

function fragmentationPolicy(): Policy {
  const mix = new WorkloadMix();
  const nodeScores = new WeakMap<NodeView, { version: number; mixVersion: number; before: number; scores: Map<string, number> }>();
  const score = (job: JobRequest, node: NodeView): number => {
    const shapes = mix.shapes();
    let entry = nodeScores.get(node);
    if (!entry || entry.version !== node.version || entry.mixVersion !== mix.version) {
      entry = { version: node.version, mixVersion: mix.version, before: nodeFragmentation(node, shapes), scores: new Map() };
      nodeScores.set(node, entry);
    }
    const key = shapeOf(job);
    let cached = entry.scores.get(key);
    if (cached === undefined) {
      const r = job.resources;
      const free = freeCapacity(node);
      const gpuFree = [...free.gpuFree];
      for (const i of chooseGpuIndexes(job, node) ?? []) gpuFree[i] -= gpuShareMilli(r.gpuMilli);
      const after = nodeFragmentation(node, shapes, { cpu: free.cpu - r.cpu, memory: free.memory - r.memory, gpuFree });
      const growth = (after - entry.before) / MILLI_PER_GPU;
      cached = -growth + GPU_PACKING_WEIGHT * gpuFillAfter(job, node) + gpuAvoidanceScore(job, node);
      entry.scores.set(key, cached);
    }
    return cached;
  };
  return {
    name: 'fgd',
    description: FRAGMENTATION_DESCRIPTION,
    score,
    monotone: false,
    observe: (job) => mix.observe(job),
  };
}

const POLICIES: Record<string, PolicyFactory> = {
  binpack: stateless(
    'binpack',
    'most-allocated over CPU, memory and GPU; CPU jobs keep off GPU nodes',
    (job, node) => binpackScore(job, node) + gpuAvoidanceScore(job, node),
    true,
  ),
  spread: stateless(
    'spread',
    'least-allocated: load spread evenly over nodes',
    (job, node) => spreadScore(job, node) + gpuAvoidanceScore(job, node),
    false,
  ),
  fgd: { description: FRAGMENTATION_DESCRIPTION, create: fragmentationPolicy },
};

export const DEFAULT_POLICY = 'binpack';

export function policyNames(): string[] {
  return Object.keys(POLICIES);
}

/** A fresh instance of the named policy. */
export function createPolicy(name: string): Policy {
  const factory = POLICIES[name];
  if (!factory) {
    throw new TitanError('InvalidInput', `policy: unknown policy "${name}" (known: ${policyNames().join(', ')})`, {
      field: 'policy',
    });
  }
  return factory.create();
}
