import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { TitanError } from '../../pkg/model/index.js';
import { comparisonReport, comparisonRuns, type ComparisonReport, type ComparisonRequest } from './compare.js';
import { seedRuns, simulationReport, type SimulationReport, type SimulationRequest } from './report.js';
import { simulateSeed, type SeedResult, type SimulationOptions } from './run.js';
import type { TraceJob, TraceNode } from './trace.js';

/** What each worker thread gets once. */
export interface SeedWorkerData {
  nodes: readonly TraceNode[];
  jobs: readonly TraceJob[];
}

/** A worker's answer for the run at `index`. */
export type SeedReply = { index: number; result: SeedResult } | { index: number; error: string };

/** Threads for `runs` runs by default: one per run, at most one per core this process may use. */
export function defaultThreads(runs: number): number {
  return Math.max(1, Math.min(runs, availableParallelism()));
}

/**
 * simulateSeed for each run, on up to `threads` worker threads (each run a
 * pure function of the trace and its options: the results are the same as
 * one thread's, in the same order; only `seconds` differs). One thread runs
 * them here, in this thread.
 */
export async function runSeeds(nodes: readonly TraceNode[], jobs: readonly TraceJob[], runs: readonly SimulationOptions[], threads: number): Promise<SeedResult[]> {
  const count = Math.min(threads, runs.length);
  if (count <= 1) return runs.map((run) => simulateSeed(nodes, jobs, run));
  const results = new Array<SeedResult>(runs.length);
  const data: SeedWorkerData = { nodes, jobs };
  const workers = Array.from({ length: count }, () => new Worker(new URL('./seed-worker.js', import.meta.url), { workerData: data }));
  let next = 0;
  const drive = (worker: Worker): Promise<void> =>
    new Promise((resolve, reject) => {
      const give = (): void => {
        if (next >= runs.length) return resolve();
        const index = next++;
        worker.postMessage({ index, run: runs[index] });
      };
      worker.on('message', (reply: SeedReply) => {
        if ('error' in reply) return reject(new TitanError('Internal', `simulation of seed ${runs[reply.index].seed} failed: ${reply.error}`));
        results[reply.index] = reply.result;
        give();
      });
      worker.on('error', reject);
      worker.on('exit', (code) => reject(new TitanError('Internal', `a simulation thread exited (code ${code}) before its runs were done`)));
      give();
    });
  try {
    await Promise.all(workers.map(drive));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}

/** runSimulation on `threads` worker threads: the same report. */
export async function simulateOnThreads(request: SimulationRequest, threads: number): Promise<SimulationReport> {
  const started = performance.now();
  return simulationReport(request, await runSeeds(request.nodes, request.jobs, seedRuns(request), threads), started);
}

/** runComparison on `threads` worker threads: the same report. */
export async function compareOnThreads(request: ComparisonRequest, threads: number): Promise<ComparisonReport> {
  const started = performance.now();
  return comparisonReport(request, await runSeeds(request.nodes, request.jobs, comparisonRuns(request), threads), started);
}
