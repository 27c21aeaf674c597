import { createPolicy, freeGpuMilli, nodeFragmentation, PassPlacer, planPass, WorkloadMix } from '../scheduler/index.js';
import { arrivals } from './protocol.js';
import { ReplaySnapshot } from './replay-snapshot.js';
import { passJobOf, nodeViewsOf, type TraceJob, type TraceNode } from './trace.js';

export interface SimulationOptions {
  policy: string;
  seed: number;
  /** Requested GPU, as a multiple of the cluster's, at which arrivals stop. */
  tune: number;
  /** Feasible nodes scored per job (the master's sample by default; Infinity: every node). */
  sampleSize?: number;
}

export interface SeedResult {
  seed: number;
  /** Allocated ÷ total GPU, in %, when arrived GPU first reaches 100% of the cluster's. */
  gpuAllocPctAt100: number;
  /** The same at the end, when arrivals reach `tune`. */
  gpuAllocPctAt130: number;
  /** Free GPU that the trace's job mix could not use, at the end, in % of all GPU. */
  fragmentedGpuPct: number;
  placed: number;
  failed: number;
  seconds: number;
}

const percent = (part: number, whole: number): number => (whole === 0 ? 0 : (100 * part) / whole);

/**
 * One run of the FGD protocol: every task arrives once and never leaves; a
 * task that fits nowhere is dropped. Each arrival is one scheduling pass
 * (planPass, the master's) over an in-memory snapshot; the passes share one
 * placer, so its sampled scan goes on from task to task as within one of the
 * master's passes, and reserve no node (nothing waits for one).
 */
export function simulateSeed(nodes: readonly TraceNode[], jobs: readonly TraceJob[], options: SimulationOptions): SeedResult {
  const started = performance.now();
  const views = nodeViewsOf(nodes);
  const snapshot = new ReplaySnapshot(views);
  const clusterGpu = views.reduce((sum, v) => sum + v.capacity.gpuMilli, 0);
  const policy = createPolicy(options.policy);
  const placer = new PassPlacer(views, policy, options.sampleSize === undefined ? {} : { sampleSize: options.sampleSize });
  let arrived = 0;
  let allocated = 0;
  let at100: number | undefined;
  let placed = 0;
  let failed = 0;
  for (const task of arrivals(jobs, clusterGpu, options.seed, options.tune)) {
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
    if (at100 === undefined && arrived >= clusterGpu) at100 = percent(allocated, clusterGpu);
  }
  const traceMix = new WorkloadMix(jobs.length);
  for (const job of jobs) traceMix.observe(job);
  const shapes = traceMix.shapes();
  const fragmented = views.reduce((sum, v) => sum + (freeGpuMilli(v) > 0 ? nodeFragmentation(v, shapes) : 0), 0);
  return {
    seed: options.seed,
    gpuAllocPctAt100: at100 ?? percent(allocated, clusterGpu),
    gpuAllocPctAt130: percent(allocated, clusterGpu),
    fragmentedGpuPct: percent(fragmented, clusterGpu),
    placed,
    failed,
    seconds: (performance.now() - started) / 1000,
  };
}
