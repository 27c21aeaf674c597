import { allocatedAt, pythonRound, type AllocSample } from './alloc-window.js';
import { packingModel, taskTypeKey, taskTypesOf, withCounts } from './bound.js';
import type { PackingSolver } from './bound-solver.js';
import { protocolRun } from './protocol.js';
import type { TraceJob, TraceNode } from './trace.js';

export interface SeedBound {
  seed: number;
  /** An upper bound on any non-migrating policy's gpuAllocPctAt100 on this seed's arrivals (the same measure, see boundSeed). */
  gpuAllocPctAt100: number;
  /** The same for gpuAllocPctAt130. */
  gpuAllocPctAt130: number;
  /** Arrival prefixes solved. */
  solves: number;
  seconds: number;
}

const percent = (part: number, whole: number): number => (whole === 0 ? 0 : (100 * part) / whole);

/** The lines allocatedAt averages for `percent` (its rule: arrived share rounds to it, else within one point). */
function windowRows(arrivedMilli: readonly number[], gpus: number, percent: number): number[] {
  const rounded = arrivedMilli.map((a) => pythonRound(a / gpus / 10, 0));
  const exact = rounded.flatMap((r, i) => (r === percent ? [i] : []));
  return exact.length > 0 ? exact : rounded.flatMap((r, i) => (Math.abs(r - percent) <= 1 ? [i] : []));
}

/**
 * The bound for one seed, in simulateSeed's measure. After each arrival i
 * no policy has allocated more than the packing bound of the tasks arrived
 * so far (packingModel), nor more than arrived; so that bound, per log line,
 * fed to the same averaging and rounding (each step of which is monotone),
 * bounds the policy's figure. Only the lines the measure reads are solved,
 * as prefixes of one model (withCounts), each from the last one's basis.
 */
export function boundSeed(nodes: readonly TraceNode[], jobs: readonly TraceJob[], options: { seed: number; tune: number }, solve: PackingSolver): SeedBound {
  const started = performance.now();
  const run = protocolRun(jobs, nodes, options.seed, options.tune);
  const clusterGpu = run.nodes.reduce((sum, n) => sum + n.gpus * 1000, 0);
  const gpus = clusterGpu / 1000;
  const arrivedMilli: number[] = [];
  let arrived = 0;
  for (const task of run.arrivals) arrivedMilli.push((arrived += task.resources.gpuMilli));
  const last = run.arrivals.length - 1;
  const firstFull = arrivedMilli.findIndex((a) => a >= clusterGpu);
  const atTune = Math.round(options.tune * 100);
  const wanted = [...new Set([...windowRows(arrivedMilli, gpus, 100), ...windowRows(arrivedMilli, gpus, atTune), firstFull, last])]
    .filter((i) => i >= 0)
    .sort((a, b) => a - b);

  // One model for all prefixes: every type that arrives, counted per prefix.
  const types = taskTypesOf(run.arrivals);
  const typeIndex = new Map(types.map((t, i) => [taskTypeKey(t.job), i]));
  const model = packingModel(run.nodes, types);
  const counts = types.map(() => 0);
  const prefixes = [];
  let next = 0;
  for (const row of wanted) {
    for (; next <= row; next++) counts[typeIndex.get(taskTypeKey(run.arrivals[next])) as number]++;
    prefixes.push(withCounts(model, counts));
  }
  const solved = solve(prefixes);
  // Allocations are whole milli-GPU: round the solver's value up, allowing for its tolerance.
  const bound = new Map(wanted.map((row, k) => [row, Math.min(arrivedMilli[row], Math.ceil(solved[k] - 1e-3))]));
  const samples: AllocSample[] = arrivedMilli.map((a, i) => ({ arrivedMilli: a, allocatedMilli: bound.get(i) ?? a }));
  const atEnd = percent(bound.get(last) ?? 0, clusterGpu);
  const firstAt100 = firstFull >= 0 ? percent(bound.get(firstFull) ?? 0, clusterGpu) : undefined;
  return {
    seed: options.seed,
    gpuAllocPctAt100: (gpus > 0 ? allocatedAt(samples, gpus, 100) : undefined) ?? firstAt100 ?? atEnd,
    gpuAllocPctAt130: (gpus > 0 ? allocatedAt(samples, gpus, atTune) : undefined) ?? atEnd,
    solves: wanted.length,
    seconds: (performance.now() - started) / 1000,
  };
}
