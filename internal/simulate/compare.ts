import { sampled } from './report.js';
import { simulateSeed, type SeedResult, type SimulationOptions } from './run.js';
import { bootstrapMedianInterval, median } from './seed-stats.js';
import type { TraceJob, TraceNode } from './trace.js';

export interface ComparisonRequest {
  nodes: readonly TraceNode[];
  jobs: readonly TraceJob[];
  /** The policy under test. */
  policy: string;
  /** The policy it is measured against (a reference policy scores every node whatever sampleSize says). */
  reference: string;
  /** Feasible nodes scored per task by the policy under test (--sample-nodes; Infinity: all); absent, the master's default. */
  sampleSize?: number;
  /** First seed; seeds run are seed .. seed + seeds - 1. */
  seed: number;
  seeds: number;
  tune: number;
  /** Bootstrap resamples for the interval (default 2000). */
  resamples?: number;
}

/** Both policies' figures on one seed's arrivals, and the policy's minus the reference's. */
export interface ComparedSeed {
  seed: number;
  policy: SeedResult;
  reference: SeedResult;
  diffAt100: number;
  diffAt130: number;
}

export interface ComparedFigure {
  policy: number;
  reference: number;
  /** Median of the per-seed differences (not the difference of the medians). */
  diff: number;
  /** Percentile-bootstrap interval of that median over seeds. */
  interval: [number, number];
}

export interface ComparisonReport {
  policy: string;
  reference: string;
  tune: number;
  nodes: number;
  gpus: number;
  traceJobs: number;
  runs: ComparedSeed[];
  /** GPU allocated % when arrivals reach 100% and `tune` of the cluster's GPU: medians over seeds. */
  at100: ComparedFigure;
  at130: ComparedFigure;
  confidence: number;
  resamples: number;
  seconds: number;
}

const CONFIDENCE = 0.95;

function figure(runs: readonly ComparedSeed[], pick: (r: SeedResult) => number, diff: (r: ComparedSeed) => number, resamples: number): ComparedFigure {
  const diffs = runs.map(diff);
  return {
    policy: median(runs.map((r) => pick(r.policy))),
    reference: median(runs.map((r) => pick(r.reference))),
    diff: median(diffs),
    interval: bootstrapMedianInterval(diffs, { resamples, confidence: CONFIDENCE }),
  };
}

/**
 * A same-run comparison: for each seed, both policies place the same
 * arrivals on the same nodes (the protocol is a function of the seed), and
 * the claim is the policy's GPU allocation minus the reference's, per seed,
 * as the median over seeds, with a bootstrap interval over seeds.
 */
export function runComparison(request: ComparisonRequest): ComparisonReport {
  const started = performance.now();
  const runs = comparisonRuns(request).map((run) => simulateSeed(request.nodes, request.jobs, run));
  return comparisonReport(request, runs, started);
}

/** The simulateSeed runs of a comparison: for each seed, the policy's, then the reference's. */
export function comparisonRuns(request: ComparisonRequest): SimulationOptions[] {
  const runs: SimulationOptions[] = [];
  for (let i = 0; i < request.seeds; i++) {
    const seed = request.seed + i;
    runs.push({ policy: request.policy, seed, tune: request.tune, ...sampled(request) }, { policy: request.reference, seed, tune: request.tune });
  }
  return runs;
}

/** The report of a comparison's runs, in comparisonRuns' order (runSeeds: on worker threads); `started`: performance.now() when they began. */
export function comparisonReport(request: ComparisonRequest, results: readonly SeedResult[], started: number): ComparisonReport {
  const resamples = request.resamples ?? 2000;
  const runs: ComparedSeed[] = [];
  for (let i = 0; i < request.seeds; i++) {
    const policy = results[2 * i];
    const reference = results[2 * i + 1];
    runs.push({
      seed: request.seed + i,
      policy,
      reference,
      diffAt100: policy.gpuAllocPctAt100 - reference.gpuAllocPctAt100,
      diffAt130: policy.gpuAllocPctAt130 - reference.gpuAllocPctAt130,
    });
  }
  return {
    policy: request.policy,
    reference: request.reference,
    tune: request.tune,
    nodes: request.nodes.length,
    gpus: request.nodes.reduce((sum, n) => sum + n.gpus, 0),
    traceJobs: request.jobs.length,
    runs,
    at100: figure(runs, (r) => r.gpuAllocPctAt100, (r) => r.diffAt100, resamples),
    at130: figure(runs, (r) => r.gpuAllocPctAt130, (r) => r.diffAt130, resamples),
    confidence: CONFIDENCE,
    resamples,
    seconds: (performance.now() - started) / 1000,
  };
}
