import { invalidInput, MILLI_PER_GPU } from '../../pkg/model/index.js';
import { fitsEmptyNode, type NodeView } from '../scheduler/index.js';
import { seededRandom } from './protocol.js';
import { nodeViewsOf, traceJobOf, type TraceJob, type TraceNode, type TraceRow, type TraceTable } from './trace.js';

// A family of traces from one: each task type's rows are resampled from the
// base trace's rows of that type (kept, subsampled without replacement, or
// drawn again with replacement), so a type keeps its size distribution while
// its share moves. This is how the FGD authors derived the openb variants
// from the default trace; docs/scheduling.md ("Synthesized trace families")
// gives the measures and what stays fixed.

/** The shares a family varies. */
export interface TraceShares {
  /** CPU-only tasks ÷ all tasks. */
  cpuOnly: number;
  /** GPU request (milli-GPU) of GPU-sharing tasks (one GPU, gpu_milli < 1000) ÷ the trace's GPU request. */
  gpuShare: number;
  /** GPU request of single whole-GPU tasks ÷ the trace's GPU request: what the other GPU shares leave. */
  wholeGpu: number;
  /** GPU request of multi-GPU tasks ÷ the trace's GPU request. */
  multiGpu: number;
  /** GPU tasks with a gpu_spec ÷ GPU tasks. */
  constrained: number;
}

export interface SynthOptions {
  seed: number;
  /** Multipliers of the base trace's share (1: unchanged). */
  cpuOnly?: number;
  gpuShare?: number;
  multiGpu?: number;
  /** The fraction of GPU tasks constrained to GPU models (absent: the base's constraints are kept). */
  constrained?: number;
}

type Knob = 'cpuOnly' | 'gpuShare' | 'multiGpu' | 'constrained';

/**
 * Each knob's flag (errors name it) and its range: the issue's, widened so
 * the published variants are reachable (cpu050 is CPU-only ×0.38,
 * multigpu20 multi-GPU ×2.80).
 */
export const SYNTH_KNOBS: Readonly<Record<Knob, { flag: string; min: number; max: number }>> = {
  cpuOnly: { flag: '--cpu-only', min: 0.25, max: 3 },
  gpuShare: { flag: '--gpu-share', min: 0.5, max: 2 },
  multiGpu: { flag: '--multi-gpu', min: 0.5, max: 3 },
  constrained: { flag: '--constrained', min: 0, max: 0.5 },
};

export interface SynthResult {
  table: TraceTable;
  base: TraceShares;
  target: TraceShares;
  achieved: TraceShares;
  tasks: number;
  /** Base rows that fit no node of the node list, left out before resampling. */
  dropped: number;
}

type TaskType = 'cpuOnly' | 'gpuShare' | 'wholeGpu' | 'multiGpu';

function typeOf(job: TraceJob): TaskType {
  const milli = job.resources.gpuMilli;
  return milli === 0 ? 'cpuOnly' : milli < MILLI_PER_GPU ? 'gpuShare' : milli === MILLI_PER_GPU ? 'wholeGpu' : 'multiGpu';
}

/** The shares of a list of tasks, in the measures the FGD variants use. */
export function traceShares(jobs: readonly TraceJob[]): TraceShares {
  const milli: Record<TaskType, number> = { cpuOnly: 0, gpuShare: 0, wholeGpu: 0, multiGpu: 0 };
  let cpuOnly = 0;
  let gpuTasks = 0;
  let constrained = 0;
  for (const job of jobs) {
    const type = typeOf(job);
    milli[type] += job.resources.gpuMilli;
    if (type === 'cpuOnly') cpuOnly++;
    else {
      gpuTasks++;
      if (job.gpuModels) constrained++;
    }
  }
  const gpu = milli.gpuShare + milli.wholeGpu + milli.multiGpu;
  const of = (part: number, whole: number): number => (whole === 0 ? 0 : part / whole);
  return {
    cpuOnly: of(cpuOnly, jobs.length),
    gpuShare: of(milli.gpuShare, gpu),
    wholeGpu: of(milli.wholeGpu, gpu),
    multiGpu: of(milli.multiGpu, gpu),
    constrained: of(constrained, gpuTasks),
  };
}

function checkOptions(options: SynthOptions): void {
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 0xffffffff) {
    throw invalidInput('--seed', `${options.seed} must be a whole number from 0 to ${0xffffffff}`);
  }
  for (const [knob, { flag, min, max }] of Object.entries(SYNTH_KNOBS) as [Knob, (typeof SYNTH_KNOBS)[Knob]][]) {
    const value = options[knob];
    if (value !== undefined && !(Number.isFinite(value) && value >= min && value <= max)) {
      throw invalidInput(flag, `${value} must be from ${min} to ${max}`);
    }
  }
}

/**
 * Rows of `pool` whose weights add up to close to `target`: all of them and
 * more drawn with replacement when the target is above their total, a random
 * subset otherwise. Stops before a row that would overshoot by more than it
 * closes the gap, so the sum is within half the largest row of the target.
 */
function resample(pool: readonly number[], weight: (row: number) => number, target: number, random: () => number): number[] {
  const total = pool.reduce((sum, row) => sum + weight(row), 0);
  const take = (picked: number[], sum: number, next: () => number): number[] => {
    while (sum < target) {
      const row = next();
      const w = weight(row);
      if (sum + w - target > target - sum) break;
      picked.push(row);
      sum += w;
    }
    return picked;
  };
  if (pool.length === 0) return [];
  if (target >= total) return take([...pool], total, () => pool[Math.floor(random() * pool.length)]);
  const order = shuffled(pool, random);
  let i = 0;
  return take([], 0, () => order[i++]).sort((a, b) => a - b);
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const order = [...items];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

interface HostModel {
  model: string;
  gpus: number;
}

/** The GPU models of the nodes that could host the task if empty, whatever its gpu_spec says, with their GPUs on those nodes; by model. */
function hostModels(job: TraceJob, views: readonly NodeView[]): HostModel[] {
  const { gpuModels: _ignored, ...free } = job;
  const gpus = new Map<string, number>();
  for (const view of views) {
    if (view.gpus.length > 0 && fitsEmptyNode(free, view)) gpus.set(view.gpus[0].model, (gpus.get(view.gpus[0].model) ?? 0) + view.gpus.length);
  }
  return [...gpus].map(([model, count]) => ({ model, gpus: count })).sort((a, b) => (a.model < b.model ? -1 : 1));
}

/**
 * One model the task can run on, then another with probability ½, and so on
 * (mostly one or two models, as in the FGD gpuspec traces); each drawn in
 * proportion to its GPUs that can host the task, so a constraint follows the
 * cluster's supply rather than pinning tasks to a model of two GPUs.
 */
function drawModels(hosts: readonly HostModel[], random: () => number): string[] {
  const left = [...hosts];
  const drawn: string[] = [];
  do {
    let r = random() * left.reduce((sum, h) => sum + h.gpus, 0);
    const found = left.findIndex((h) => (r -= h.gpus) < 0);
    const i = found < 0 ? left.length - 1 : found;
    drawn.push(left[i].model);
    left.splice(i, 1);
  } while (left.length > 0 && random() < 0.5);
  return drawn.sort();
}

/**
 * A trace of the base's family: the same columns, rows copied from the base's
 * rows of each type, named `synth-<seed>-NNNN`. The GPU request stays the
 * base's; GPU-sharing and multi-GPU tasks take the requested shares of it and
 * whole-GPU tasks the rest; CPU-only tasks are added or removed to reach
 * their share of all tasks. Every task fits at least one node, constraint
 * included; base rows that fit none are left out first.
 */
export function synthesizeTrace(base: TraceTable, nodes: readonly TraceNode[], options: SynthOptions, file = 'base'): SynthResult {
  checkOptions(options);
  const views = nodeViewsOf(nodes);
  // Tasks repeat a few hundred shapes: each shape is checked against the nodes once.
  const shape = (job: TraceJob): string => `${job.resources.cpu}|${job.resources.memory}|${job.resources.gpuMilli}`;
  const fitCache = new Map<string, boolean>();
  const fits = (job: TraceJob): boolean => {
    const key = `${shape(job)}|${job.gpuModels?.join('|') ?? ''}`;
    let fit = fitCache.get(key);
    if (fit === undefined) fitCache.set(key, (fit = views.some((v) => fitsEmptyNode(job, v))));
    return fit;
  };
  const hostCache = new Map<string, HostModel[]>();
  const hostable = (job: TraceJob): HostModel[] => {
    let models = hostCache.get(shape(job));
    if (models === undefined) hostCache.set(shape(job), (models = hostModels(job, views)));
    return models;
  };
  const allJobs = base.rows.map((row, i) => traceJobOf(row, file, base.lines[i]));
  const kept = allJobs.map((_, i) => i).filter((i) => fits(allJobs[i]));
  const pools: Record<TaskType, number[]> = { cpuOnly: [], gpuShare: [], wholeGpu: [], multiGpu: [] };
  for (const i of kept) pools[typeOf(allJobs[i])].push(i);
  const baseShares = traceShares(kept.map((i) => allJobs[i]));
  if (pools.gpuShare.length + pools.wholeGpu.length + pools.multiGpu.length === 0) {
    throw invalidInput('--base', `${file}: no GPU task fits a node of the node list: nothing to resample`);
  }

  const target: TraceShares = {
    cpuOnly: baseShares.cpuOnly * (options.cpuOnly ?? 1),
    gpuShare: baseShares.gpuShare * (options.gpuShare ?? 1),
    multiGpu: baseShares.multiGpu * (options.multiGpu ?? 1),
    wholeGpu: 0,
    constrained: options.constrained ?? baseShares.constrained,
  };
  target.wholeGpu = 1 - target.gpuShare - target.multiGpu;
  if (target.wholeGpu < -1e-9 || (target.wholeGpu > 1e-9 && pools.wholeGpu.length === 0)) {
    throw invalidInput('--gpu-share', `with --multi-gpu, GPU-sharing and multi-GPU tasks would take ${((1 - target.wholeGpu) * 100).toFixed(1)}% of the GPU request, and ${file} has ${pools.wholeGpu.length} whole-GPU tasks for the rest`);
  }
  if (target.cpuOnly >= 0.99) throw invalidInput('--cpu-only', `CPU-only tasks would be ${(target.cpuOnly * 100).toFixed(1)}% of all tasks`);
  target.wholeGpu = Math.max(0, target.wholeGpu);

  const random = seededRandom(options.seed);
  const gpuRequest = kept.reduce((sum, i) => sum + allJobs[i].resources.gpuMilli, 0);
  const milliOf = (i: number): number => allJobs[i].resources.gpuMilli;
  const picked: number[] = [];
  for (const type of ['gpuShare', 'wholeGpu', 'multiGpu'] as const) {
    picked.push(...resample(pools[type], milliOf, Math.round(target[type] * gpuRequest), random));
  }
  const cpuTasks = Math.round((target.cpuOnly * picked.length) / (1 - target.cpuOnly));
  picked.push(...resample(pools.cpuOnly, () => 1, cpuTasks, random));
  picked.sort((a, b) => a - b);

  const width = Math.max(4, String(picked.length - 1).length);
  const rows: TraceRow[] = picked.map((i, n) => ({ ...base.rows[i], name: `synth-${options.seed}-${String(n).padStart(width, '0')}` }));
  const jobs = picked.map((i, n) => ({ ...allJobs[i], id: rows[n].name, name: rows[n].name }));
  let header = base.header;
  if (options.constrained !== undefined) {
    if (!header.includes('gpu_spec') && options.constrained > 0) header = [...header.slice(0, header.indexOf('gpu_milli') + 1), 'gpu_spec', ...header.slice(header.indexOf('gpu_milli') + 1)];
    constrain(rows, jobs, options.constrained, hostable, random);
  }
  return { table: { header, rows, lines: rows.map((_, n) => n + 2) }, base: baseShares, target, achieved: traceShares(jobs), tasks: rows.length, dropped: base.rows.length - kept.length };
}

/** Sets or clears gpu_spec on random GPU tasks until `fraction` of them carry one; a new spec names only models that can host the task. */
function constrain(rows: TraceRow[], jobs: TraceJob[], fraction: number, hostable: (job: TraceJob) => HostModel[], random: () => number): void {
  const gpu = jobs.map((_, n) => n).filter((n) => jobs[n].resources.gpuMilli > 0);
  const wanted = Math.round(fraction * gpu.length);
  const withSpec = gpu.filter((n) => jobs[n].gpuModels);
  const without = gpu.filter((n) => !jobs[n].gpuModels);
  if (withSpec.length > wanted) {
    for (const n of shuffled(withSpec, random).slice(0, withSpec.length - wanted)) {
      rows[n] = { ...rows[n], gpu_spec: '' };
      const { gpuModels: _dropped, ...job } = jobs[n];
      jobs[n] = job;
    }
  }
  for (const n of shuffled(without, random).slice(0, Math.max(0, wanted - withSpec.length))) {
    const models = drawModels(hostable(jobs[n]), random);
    rows[n] = { ...rows[n], gpu_spec: models.join('|') };
    jobs[n] = { ...jobs[n], gpuModels: models };
  }
}
