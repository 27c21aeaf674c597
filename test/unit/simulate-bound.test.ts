import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { packingModel, taskTypesOf } from '../../internal/simulate/bound.js';
import { dffRows } from '../../internal/simulate/bound-dff.js';
import { boundSeed } from '../../internal/simulate/bound-seed.js';
import { loadPackingSolver, type PackingSolver } from '../../internal/simulate/bound-solver.js';
import { protocolRun } from '../../internal/simulate/protocol.js';
import { simulateSeed } from '../../internal/simulate/run.js';
import { simulationPolicyNames } from '../../internal/simulate/simulation-policy.js';
import type { TraceJob, TraceNode } from '../../internal/simulate/trace.js';

const MiB = 2 ** 20;
const MODELS = ['A', 'B'];

let solve: PackingSolver;
beforeAll(async () => {
  solve = await loadPackingSolver();
});

/**
 * The most GPU (milli) any placement of some of the tasks allocates, by
 * exhaustive search: each task to a node or to nothing, nodes tracked GPU by
 * GPU (a share takes part of one GPU with room; a task of k GPUs takes k
 * wholly free GPUs). Written apart from the scheduler, to check the bound.
 */
function bruteForceOptimum(nodes: readonly TraceNode[], tasks: readonly TraceJob[]): number {
  // A task without GPU adds nothing; largest first finds good packings early.
  const gpuTasks = tasks.filter((t) => t.resources.gpuMilli > 0).sort((a, b) => b.resources.gpuMilli - a.resources.gpuMilli);
  const left = gpuTasks.map((_, i) => gpuTasks.slice(i).reduce((sum, t) => sum + t.resources.gpuMilli, 0));
  const state = nodes.map((n) => ({ cpu: n.cpu, memory: n.memory, gpus: Array.from({ length: n.gpus }, () => 1000), model: n.model }));
  let best = 0;
  const search = (i: number, value: number): void => {
    best = Math.max(best, value);
    if (i === gpuTasks.length || value + left[i] <= best) return;
    const task = gpuTasks[i];
    const { cpu, memory, gpuMilli } = task.resources;
    for (const node of state) {
      if (node.cpu < cpu || node.memory < memory) continue;
      if (task.gpuModels && !task.gpuModels.includes(node.model)) continue;
      const choices: number[][] = [];
      if (gpuMilli < 1000) {
        // One GPU per distinct free amount: GPUs with the same room are alike.
        const tried = new Set<number>();
        node.gpus.forEach((free, g) => {
          if (free >= gpuMilli && !tried.has(free)) {
            tried.add(free);
            choices.push([g]);
          }
        });
      } else {
        const whole = node.gpus.flatMap((free, g) => (free === 1000 ? [g] : []));
        if (whole.length >= gpuMilli / 1000) choices.push(whole.slice(0, gpuMilli / 1000));
      }
      for (const gpus of choices) {
        const share = Math.min(gpuMilli, 1000);
        node.cpu -= cpu;
        node.memory -= memory;
        for (const g of gpus) node.gpus[g] -= share;
        search(i + 1, value + gpuMilli);
        node.cpu += cpu;
        node.memory += memory;
        for (const g of gpus) node.gpus[g] += share;
      }
    }
    search(i + 1, value);
  };
  search(0, 0);
  return best;
}

const node = fc.record({
  cpu: fc.integer({ min: 1, max: 8 }).map((c) => c * 1000),
  memory: fc.integer({ min: 1, max: 8 }).map((m) => m * 1024 * MiB),
  gpus: fc.integer({ min: 1, max: 4 }),
  model: fc.constantFrom(...MODELS),
});

const task = fc.record({
  cpu: fc.integer({ min: 0, max: 6 }).map((c) => c * 500),
  memory: fc.integer({ min: 0, max: 6 }).map((m) => m * 512 * MiB),
  gpu: fc.oneof(
    fc.constant(0),
    fc.constantFrom(100, 190, 250, 300, 400, 500, 600, 810, 900),
    fc.constantFrom(1000, 2000, 3000, 4000),
  ),
  models: fc.option(fc.subarray(MODELS, { minLength: 1 }), { nil: undefined }),
});

const cluster = fc.record({
  nodes: fc.array(node, { minLength: 2, maxLength: 4 }),
  tasks: fc.array(task, { minLength: 1, maxLength: 7 }),
  seed: fc.integer({ min: 0, max: 1000 }),
});

const nodesOf = (specs: readonly { cpu: number; memory: number; gpus: number; model: string }[]): TraceNode[] => specs.map((n, i) => ({ id: `n${i}`, ...n }));
const tasksOf = (specs: readonly { cpu: number; memory: number; gpu: number; models: string[] | undefined }[]): TraceJob[] =>
  specs.map((t, i) => ({
    id: `t${i}`,
    name: `t${i}`,
    kind: 'docker',
    resources: { cpu: t.cpu, memory: t.memory, gpuMilli: t.gpu },
    ...(t.models && t.gpu > 0 ? { gpuModels: t.models } : {}),
  }));

describe('the packing bound', () => {
  it('counts two 810 shares on one GPU as one task, not 1.23 (a share lives inside one GPU)', () => {
    const nodes: TraceNode[] = [{ id: 'n', cpu: 8000, memory: 8 * 1024 * MiB, gpus: 1, model: 'A' }];
    const tasks = tasksOf([0, 1].map(() => ({ cpu: 1000, memory: 0, gpu: 810, models: undefined })));
    expect(solve([packingModel(nodes, taskTypesOf(tasks))])[0]).toBeCloseTo(810, 6);
  });

  it('gives dual-feasible rows that every packing of one bin satisfies', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 1000 }), fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 6 }), (capacity, raw) => {
        const sizes = raw.map((s) => Math.min(s, capacity));
        for (const row of dffRows(sizes, capacity)) {
          // Any subset that fits one bin keeps Σ f ≤ scale × capacity.
          for (let mask = 1; mask < 1 << sizes.length; mask++) {
            const chosen = sizes.filter((_, i) => mask & (1 << i));
            if (chosen.reduce((a, b) => a + b, 0) > capacity) continue;
            expect(chosen.reduce((a, b) => a + row.coefficient(b), 0)).toBeLessThanOrEqual(row.scale * capacity);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('is never below the offline optimum (brute force), which no policy beats, on random small clusters', () => {
    const policies = simulationPolicyNames();
    fc.assert(
      fc.property(cluster, ({ nodes: nodeSpecs, tasks: taskSpecs, seed }) => {
        const nodes = nodesOf(nodeSpecs);
        const jobs = tasksOf(taskSpecs);
        const clusterGpu = nodes.reduce((sum, n) => sum + n.gpus * 1000, 0);
        const requested = jobs.reduce((sum, j) => sum + j.resources.gpuMilli, 0);
        // Arrivals stop just above what the tasks request: the protocol
        // neither drops nor repeats a GPU task, so the brute force sees them all.
        const tune = (requested + 0.5) / clusterGpu;
        const arrivals = protocolRun(jobs, nodes, seed, tune).arrivals;
        const optimum = bruteForceOptimum(nodes, arrivals);
        // The relaxation, continuous (what --bound solves) and integer, on all arrivals.
        const [lp, mip] = solve([packingModel(nodes, taskTypesOf(arrivals)), packingModel(nodes, taskTypesOf(arrivals), { integer: true })]);
        expect(mip).toBeGreaterThanOrEqual(optimum - 1e-6);
        expect(lp).toBeGreaterThanOrEqual(mip - 1e-6);
        // Per seed, in the simulator's measure: bound ≥ every policy.
        const bound = boundSeed(nodes, jobs, { seed, tune }, solve);
        for (const policy of policies) {
          const run = simulateSeed(nodes, jobs, { policy, seed, tune });
          const at = `${policy}, seed ${seed}`;
          expect(run.gpuAllocPctAt100, at).toBeLessThanOrEqual(bound.gpuAllocPctAt100);
          expect(run.gpuAllocPctAt130, at).toBeLessThanOrEqual(bound.gpuAllocPctAt130);
          // Its figures never pass its final allocation (rounded to 0.01), which the optimum bounds.
          expect(run.gpuAllocPctAt130, at).toBeLessThanOrEqual((100 * optimum) / clusterGpu + 0.005 + 1e-9);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('bounds every policy on arrivals that resample a small trace to 130% of the GPU', () => {
    // Arrivals repeat tasks here: the bound follows the measure's lines past the trace.
    const nodes = nodesOf([
      { cpu: 8000, memory: 8192 * MiB, gpus: 2, model: 'A' },
      { cpu: 8000, memory: 8192 * MiB, gpus: 2, model: 'A' },
      { cpu: 16000, memory: 16384 * MiB, gpus: 4, model: 'B' },
    ]);
    const jobs = tasksOf([
      { cpu: 2000, memory: 1024 * MiB, gpu: 810, models: undefined },
      { cpu: 1000, memory: 1024 * MiB, gpu: 470, models: undefined },
      { cpu: 4000, memory: 2048 * MiB, gpu: 1000, models: undefined },
      { cpu: 6000, memory: 4096 * MiB, gpu: 2000, models: ['B'] },
      { cpu: 1000, memory: 512 * MiB, gpu: 0, models: undefined },
    ]);
    for (let seed = 0; seed < 20; seed++) {
      const bound = boundSeed(nodes, jobs, { seed, tune: 1.3 }, solve);
      expect(bound.gpuAllocPctAt130).toBeLessThanOrEqual(100);
      for (const policy of simulationPolicyNames()) {
        const run = simulateSeed(nodes, jobs, { policy, seed, tune: 1.3 });
        expect(run.gpuAllocPctAt100, `${policy}, seed ${seed}`).toBeLessThanOrEqual(bound.gpuAllocPctAt100);
        expect(run.gpuAllocPctAt130, `${policy}, seed ${seed}`).toBeLessThanOrEqual(bound.gpuAllocPctAt130);
      }
    }
  });
});
