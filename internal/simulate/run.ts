import { freeGpuMilli, nodeFragmentation, PassPlacer, planPass, WorkloadMix } from '../scheduler/index.js';
import { allocatedAt, type AllocSample } from './alloc-window.js';
import { protocolRun } from './protocol.js';
import { ReplaySnapshot } from './replay-snapshot.js';
import { createSimulationPolicy } from './simulation-policy.js';
import { passJobOf, nodeViewsOf, type TraceJob, type TraceNode } from './trace.js';

export interface SimulationOptions {
  policy: string;
  seed: number;
  /** Requested GPU, as a multiple of the cluster's, at which arrivals stop. */
  tune: number;
  /** Feasible nodes scored per job (Titan's policies: the master's sample; references: every node; Infinity: every node). */
  sampleSize?: number;
}

export interface SeedResult {
  seed: number;
  /** Allocated ÷ total GPU, in %, when arrived GPU reaches 100% of the cluster's (the artefact's measure: see allocatedAt). */
  gpuAllocPctAt100: number;
  /** The same when arrivals reach `tune`. */
  gpuAllocPctAt130: number;
  /** Free GPU that the trace's job mix could not use, at the end, in % of all GPU. */
  fragmentedGpuPct: number;
  placed: number;
  failed: number;
  seconds: number;
}

const percent = (part: number, whole: number): number => (whole === 0 ? 0 : (100 * part) / whole);

/**
 * One run of the FGD protocol (protocolRun: the artefact's arrivals and node
 * names for the seed): every task arrives once and never leaves; a task
 * that fits nowhere is dropped. Each arrival is one scheduling pass
 * (planPass, the master's) over an in-memory snapshot; the passes share one
 * placer, so its sampled scan goes on from task to task as within one of the
 * master's passes, and reserve no node (nothing waits for one).
 */
export function simulateSeed(nodes: readonly TraceNode[], jobs: readonly TraceJob[], options: SimulationOptions): SeedResult {
  const started = performance.now();
  const run = protocolRun(jobs, nodes, options.seed, options.tune);
  const views = nodeViewsOf(run.nodes);
  const snapshot = new ReplaySnapshot(views);
  const clusterGpu = views.reduce((sum, v) => sum + v.capacity.gpuMilli, 0);
  const gpus = clusterGpu / 1000;
  const { policy, fullScan } = createSimulationPolicy(options.policy, jobs);
  const sampleSize = options.sampleSize ?? (fullScan ? Infinity : undefined);
  const placer = new PassPlacer(views, policy, sampleSize === undefined ? {} : { sampleSize });
  let arrived = 0;
  let allocated = 0;
  let firstAt100: number | undefined;
  let placed = 0;
  let failed = 0;
  // One sample per task, as the artefact logs them.
  const samples: AllocSample[] = [];
  for (const task of run.arrivals) {
    const job = passJobOf(task, 0);
    policy.observe(job);
    snapshot.enqueue(job);
    const plan = planPass(snapshot, policy, { now: 0, queues: [], placer, backfill: false });
    snapshot.dequeue(job.id);
    if (plan.placements.length > 0) {
      allocated += job.resources.gpuMilli;
      placed++;
    } else {
      failed++;
    }
    arrived += job.resources.gpuMilli;
    samples.push({ arrivedMilli: arrived, allocatedMilli: allocated });
    if (firstAt100 === undefined && arrived >= clusterGpu) firstAt100 = percent(allocated, clusterGpu);
  }
  const traceMix = new WorkloadMix(jobs.length);
  for (const job of jobs) traceMix.observe(job);
  const shapes = traceMix.shapes();
  const fragmented = views.reduce((sum, v) => sum + (freeGpuMilli(v) > 0 ? nodeFragmentation(v, shapes) : 0), 0);
  const atEnd = percent(allocated, clusterGpu);
  return {
    seed: options.seed,
    // A small trace may have no task near the mark: then the first crossing, or the end.
    gpuAllocPctAt100: (gpus > 0 ? allocatedAt(samples, gpus, 100) : undefined) ?? firstAt100 ?? atEnd,
    gpuAllocPctAt130: (gpus > 0 ? allocatedAt(samples, gpus, Math.round(options.tune * 100)) : undefined) ?? atEnd,
    fragmentedGpuPct: percent(fragmented, clusterGpu),
    placed,
    failed,
    seconds: (performance.now() - started) / 1000,
  };
}
