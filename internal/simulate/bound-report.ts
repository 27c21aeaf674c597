import { boundSeed, type SeedBound } from './bound-seed.js';
import type { PackingSolver } from './bound-solver.js';
import type { SeedResult } from './run.js';
import { median } from './seed-stats.js';
import type { TraceJob, TraceNode } from './trace.js';

/** A policy's runs, one per seed, in seed order. */
export interface PolicyRuns {
  policy: string;
  runs: readonly SeedResult[];
}

/** The bound minus what a policy allocated, in points of GPU %. */
export interface PolicyGap {
  policy: string;
  gapAt100: number;
  gapAt130: number;
}

export interface BoundedSeed extends SeedBound {
  gaps: PolicyGap[];
}

export interface BoundReport {
  /** What the bound is, for readers of the JSON. */
  method: string;
  runs: BoundedSeed[];
  /** Medians over seeds: of the bound, and of each policy's per-seed gap. */
  median: { gpuAllocPctAt100: number; gpuAllocPctAt130: number; gaps: PolicyGap[] };
  seconds: number;
}

export const BOUND_METHOD =
  'LP relaxation of the offline packing of the tasks arrived so far (node groups, CPU, memory, whole GPUs, shares inside one GPU, models; dual-feasible-function cuts), solved by HiGHS; no non-migrating policy allocates more';

/** The bound on each seed's arrivals, and each policy's gap to it (the runs must cover the same seeds). */
export function boundReport(
  request: { nodes: readonly TraceNode[]; jobs: readonly TraceJob[]; tune: number },
  policies: readonly PolicyRuns[],
  solve: PackingSolver,
): BoundReport {
  const started = performance.now();
  const seeds = policies[0]?.runs.map((r) => r.seed) ?? [];
  const runs = seeds.map((seed, i): BoundedSeed => {
    const bound = boundSeed(request.nodes, request.jobs, { seed, tune: request.tune }, solve);
    const gaps = policies.map(({ policy, runs: results }) => {
      const result = results[i];
      if (result.seed !== seed) throw new Error(`bound: ${policy}'s run ${i} is seed ${result.seed}, not ${seed}`);
      return { policy, gapAt100: bound.gpuAllocPctAt100 - result.gpuAllocPctAt100, gapAt130: bound.gpuAllocPctAt130 - result.gpuAllocPctAt130 };
    });
    return { ...bound, gaps };
  });
  return {
    method: BOUND_METHOD,
    runs,
    median: {
      gpuAllocPctAt100: median(runs.map((r) => r.gpuAllocPctAt100)),
      gpuAllocPctAt130: median(runs.map((r) => r.gpuAllocPctAt130)),
      gaps: policies.map(({ policy }, p) => ({
        policy,
        gapAt100: median(runs.map((r) => r.gaps[p].gapAt100)),
        gapAt130: median(runs.map((r) => r.gaps[p].gapAt130)),
      })),
    },
    seconds: (performance.now() - started) / 1000,
  };
}
