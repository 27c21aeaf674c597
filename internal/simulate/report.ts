import { simulateSeed, type SeedResult, type SimulationOptions } from './run.js';
import { median } from './seed-stats.js';
import type { TraceJob, TraceNode } from './trace.js';

export interface SimulationRequest {
  nodes: readonly TraceNode[];
  jobs: readonly TraceJob[];
  policy: string;
  /** First seed; seeds run are seed .. seed + seeds - 1. */
  seed: number;
  seeds: number;
  tune: number;
  /** Feasible nodes scored per task by Titan's policies (--sample-nodes; Infinity: all); absent, the master's default. */
  sampleSize?: number;
}

export type SeedMetrics = Omit<SeedResult, 'seed'>;

export interface SimulationReport {
  policy: string;
  tune: number;
  nodes: number;
  gpus: number;
  traceJobs: number;
  runs: SeedResult[];
  median: SeedMetrics;
  seconds: number;
}

/** The request's sample size as simulateSeed takes it (absent: each policy's own). */
export function sampled(request: { sampleSize?: number }): { sampleSize?: number } {
  return request.sampleSize === undefined ? {} : { sampleSize: request.sampleSize };
}

/** The simulateSeed runs of a request, one per seed in seed order. */
export function seedRuns(request: SimulationRequest): SimulationOptions[] {
  return Array.from({ length: request.seeds }, (_, i) => ({ policy: request.policy, seed: request.seed + i, tune: request.tune, ...sampled(request) }));
}

/** Runs the protocol once per seed and reports each run and the median of each figure (runSeeds: the same on worker threads). */
export function runSimulation(request: SimulationRequest): SimulationReport {
  const started = performance.now();
  return simulationReport(request, seedRuns(request).map((run) => simulateSeed(request.nodes, request.jobs, run)), started);
}

/** The report of a request's runs, in seed order; `started`: performance.now() when they began. */
export function simulationReport(request: SimulationRequest, runs: SeedResult[], started: number): SimulationReport {
  const of = (metric: keyof SeedMetrics): number => median(runs.map((r) => r[metric]));
  return {
    policy: request.policy,
    tune: request.tune,
    nodes: request.nodes.length,
    gpus: request.nodes.reduce((sum, n) => sum + n.gpus, 0),
    traceJobs: request.jobs.length,
    runs,
    median: {
      gpuAllocPctAt100: of('gpuAllocPctAt100'),
      gpuAllocPctAt130: of('gpuAllocPctAt130'),
      fragmentedGpuPct: of('fragmentedGpuPct'),
      placed: of('placed'),
      failed: of('failed'),
      seconds: of('seconds'),
    },
    seconds: (performance.now() - started) / 1000,
  };
}
