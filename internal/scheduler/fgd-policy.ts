import { gpuShareMilli, MILLI_PER_GPU } from '../../pkg/model/index.js';
import { chooseGpuIndexes, gpuModelAllowed } from './allocation.js';
import { ChoiceCache } from './choice-cache.js';
import { fgdWeights } from './fgd-weights.js';
import { freeCapacity, nodeFragmentation } from './fragmentation.js';
import type { Policy } from './policy.js';
import { binpackScore, gpuAvoidanceScore } from './scoring.js';
import type { JobRequest, NodeView } from './types.js';
import { shapeOf, WorkloadMix, type JobShape } from './workload-mix.js';

export const FRAGMENTATION_DESCRIPTION =
  'fragmentation-aware: the node and device whose free GPUs stay most usable by the recent job mix (FGD), then the fullest GPUs';

/**
 * Free GPUs a node's free CPU could not feed, at a CPU-per-GPU ratio of this
 * share of the recent GPU jobs' average: jobs with average CPU needs could
 * not use them. Weighted per stranded GPU, against fragmentation growth
 * (fgdWeights: the weight follows the mix).
 */
const STRANDING_CPU_SHARE = 0.75;

/** GPUs left without the CPU to use them after placing the job (0 on CPU-only nodes). */
function strandedGpus(job: JobRequest, node: NodeView, cpuPerGpu: number): number {
  if (cpuPerGpu <= 0) return 0;
  const r = job.resources;
  const cpuLeft = node.capacity.cpu - node.allocated.cpu - r.cpu;
  const gpusLeft = (node.capacity.gpuMilli - node.allocated.gpuMilli - r.gpuMilli) / MILLI_PER_GPU;
  return Math.max(0, gpusLeft - cpuLeft / (STRANDING_CPU_SHARE * cpuPerGpu));
}

/**
 * How far the node's CPU per GPU (capacity) exceeds the mix's, as a share of
 * the mix's: 0 on nodes no richer in CPU than the GPU jobs ask for.
 */
function cpuSurplus(node: NodeView, cpuPerGpu: number): number {
  if (cpuPerGpu <= 0 || node.capacity.gpuMilli === 0) return 0;
  return Math.max(0, (node.capacity.cpu * MILLI_PER_GPU) / node.capacity.gpuMilli / cpuPerGpu - 1);
}

/** Last, CPU and memory packing: it places CPU jobs, and GPU jobs among exact ties. */
const PACKING_WEIGHT = 1e-4;

/** The node's GPUs not allocated, in GPUs. */
function freeGpus(node: NodeView): number {
  return (node.capacity.gpuMilli - node.allocated.gpuMilli) / MILLI_PER_GPU;
}

/** GPU allocated on the node after placing the job, in [0, 1]. */
function gpuFillAfter(job: JobRequest, node: NodeView): number {
  return node.capacity.gpuMilli === 0 ? 0 : (node.allocated.gpuMilli + job.resources.gpuMilli) / node.capacity.gpuMilli;
}

interface Choice {
  score: number;
  devices: number[] | undefined;
}

/** Device sets worth comparing: for a share, one device of each distinct (model, free) that fits it. */
function candidateDevices(job: JobRequest, node: NodeView): number[][] {
  const milli = job.resources.gpuMilli;
  if (milli === 0 || milli >= MILLI_PER_GPU) {
    const devices = chooseGpuIndexes(job, node);
    return devices ? [devices] : [];
  }
  const seen = new Set<string>();
  const out: number[][] = [];
  node.gpuFree.forEach((free, i) => {
    const key = `${node.gpus[i].model}:${free}`;
    if (free >= milli && gpuModelAllowed(job, node.gpus[i].model) && !seen.has(key)) {
      seen.add(key);
      out.push([i]);
    }
  });
  return out;
}

/** Fragmentation growth (milli) if the job took these devices on the node. */
function growthOf(job: JobRequest, node: NodeView, devices: readonly number[], shapes: readonly JobShape[], before: number): number {
  const r = job.resources;
  const free = freeCapacity(node);
  const gpuFree = [...free.gpuFree];
  for (const i of devices) gpuFree[i] -= gpuShareMilli(r.gpuMilli);
  return nodeFragmentation(node, shapes, { cpu: free.cpu - r.cpu, memory: free.memory - r.memory, gpuFree }) - before;
}

/**
 * Fragmentation gradient descent ("Beware of Fragmentation", ATC '23): place
 * a job on the node, and for a share on the device, where it least increases
 * the free GPU that the next job from the recent mix could not use. Titan
 * adds a second term the FGD measure only sees shape by shape: for a GPU job,
 * GPUs stranded by a node's CPU running low (strandedGpus) and, when
 * CPU-only jobs ask for most of the CPU, the node's CPU per GPU beyond the
 * mix's (cpuSurplus); for a CPU-only job, a lean towards nodes with fewer
 * free GPUs. Then GPU packing (the fullest GPUs), weighted by how CPU-heavy
 * the mix is (fgdWeights); last, the most-allocated node. docs/scheduling.md has the numbers behind each term.
 *
 * Choices are cached per node state and job shape (ChoiceCache: alike
 * nodes share them) until the mix changes. So a score reads nothing of a
 * node but its state: capacity, allocations, devices.
 */
export function fragmentationPolicy(): Policy {
  const mix = new WorkloadMix();
  // Set from the mix whenever it is rebuilt, with the cache cleared: cached choices used these.
  let weights = fgdWeights(mix.cpuOnlyShare(), mix.submissions());
  const cache = new ChoiceCache<number, Choice>({
    shapeKey: shapeOf,
    // The node's fragmentation before the job.
    state: (node) => nodeFragmentation(node, mix.shapes()),
    choose: (job, node, before) => {
      const shapes = mix.shapes();
      let best: number[] | undefined;
      let bestGrowth = Infinity;
      for (const devices of candidateDevices(job, node)) {
        const growth = growthOf(job, node, devices, shapes, before);
        // Equal growth: the fuller device (best fit), then the lower index.
        const better =
          growth < bestGrowth ||
          (growth === bestGrowth && best !== undefined && node.gpuFree[devices[0]] < node.gpuFree[best[0]]);
        if (better) {
          best = devices;
          bestGrowth = growth;
        }
      }
      const growth = best === undefined ? 0 : bestGrowth / MILLI_PER_GPU;
      // A GPU job is kept from stranding GPUs, and off CPU-rich nodes when CPU-only jobs take most of the CPU;
      // a CPU-only job leans towards nodes with fewer free GPUs.
      const mixTerm =
        job.resources.gpuMilli > 0
          ? -weights.stranding * strandedGpus(job, node, mix.cpuPerGpu()) -
            (weights.cpuRichNodes * cpuSurplus(node, mix.cpuPerGpu()) * job.resources.gpuMilli) / MILLI_PER_GPU
          : -weights.cpuJobFreeGpus * freeGpus(node);
      const score =
        -growth + mixTerm + weights.gpuPacking * gpuFillAfter(job, node) + PACKING_WEIGHT * binpackScore(job, node) + gpuAvoidanceScore(job, node);
      return { score, devices: best };
    },
  });
  let mixVersion = mix.version;

  const choose = (job: JobRequest, node: NodeView): Choice => {
    mix.shapes();
    if (mix.version !== mixVersion) {
      mixVersion = mix.version;
      weights = fgdWeights(mix.cpuOnlyShare(), mix.submissions());
      cache.clear();
    }
    return cache.get(job, node);
  };

  return {
    name: 'fgd',
    description: FRAGMENTATION_DESCRIPTION,
    score: (job, node) => choose(job, node).score,
    chooseGpuIndexes: (job, node) => choose(job, node).devices,
    // Before any GPU job is seen nothing fragments: the score is a packing score.
    isMonotone: () => mix.shapes().length === 0,
    scoresVersion: () => {
      mix.shapes();
      return mix.version;
    },
    observe: (job) => mix.observe(job),
  };
}
