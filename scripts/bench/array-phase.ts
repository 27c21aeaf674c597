import { submitJobs } from '../../internal/cli/bulk-submit.js';
import { EtcdCluster } from '../../internal/cli/etcd-cluster.js';
import { planDocument } from '../../internal/cli/submit.js';
import type { Job } from '../../pkg/model/index.js';
import type { CpuSplit } from './proc-stats.js';
import { BurstTracker, ensureLeadingMaster, jobFactory, settleHistory, timeAcks, timePlacement, type BenchContext, type PlacementTiming } from './phases.js';

/**
 * The arrays phase (last, after every other figure is taken, so none of them
 * moves): `--array-tasks` tasks of one array against as many single jobs of
 * the same spec, each burst measured like the placement burst: queued while
 * the master is stopped, then the master started and its placements timed
 * from the first to the last; then acknowledged, so the cluster is empty
 * again. The array's submit is timed as `titan submit --array` runs it
 * (planning included: planDocument, EtcdCluster.submitArray).
 */
export interface ArrayDetails {
  tasks: number;
  /** Plan and write of the whole array (a 10,000-task array should take well under a second). */
  submitSeconds: number;
  submitTasksPerSec: number;
  /** The same number of single jobs written with submitJobs (titan submit -n's path, planned beforehand). */
  singleSubmitSeconds: number;
  placementsPerSec: number | null;
  singlePlacementsPerSec: number | null;
  /** Array tasks ÷ single jobs placed per second (want ≥ 0.9: within 10%). */
  placementRatio: number | null;
  startToFirstPlacementMs: number | null;
  singleStartToFirstPlacementMs: number | null;
  /**
   * CPU seconds (master, etcd, bench, host) while each burst was placed: on a
   * shared machine the master's CPU per placement compares the two more
   * steadily than the rates do.
   */
  placementCpu: CpuSplit | null;
  singlePlacementCpu: CpuSplit | null;
  /** Whether etcd's history was compacted before each burst (single jobs, array) within the settle limit. */
  settled: [boolean, boolean];
}

/** The master running, the history so far compacted, then the master stopped: a burst queued next starts clean. */
async function quiet(ctx: BenchContext): Promise<boolean> {
  await ensureLeadingMaster(ctx);
  const { settled } = await settleHistory(ctx, 'arrays');
  await ctx.master.stopForRestart();
  return settled;
}

/** One burst of jobs already written: the master (stopped) starts, places them all, the nodes acknowledge them. */
async function placeBurst(ctx: BenchContext, jobs: readonly Job[]): Promise<PlacementTiming> {
  const burst = new BurstTracker(ctx.nodes, new Set(jobs.map((j) => j.id)), 'Succeeded');
  try {
    const placed = await timePlacement(ctx, burst);
    if (placed.failure !== undefined) throw new Error(placed.failure);
    const acked = await timeAcks(ctx, burst);
    if (acked.failure !== undefined) throw new Error(acked.failure);
    return placed;
  } finally {
    burst.dispose();
  }
}

export async function arraysPhase(ctx: BenchContext): Promise<void> {
  const { options, store, result } = ctx;
  const n = options.arrayTasks;
  if (!options.complete) {
    ctx.progress('arrays: skipped with --no-complete (the bursts must end to leave room for the next)');
    return;
  }
  ctx.progress(`arrays: ${n} single jobs, then an array of ${n} tasks, each queued with the master stopped`);
  const singleSettled = await quiet(ctx);

  const makeJob = jobFactory(options);
  const singles = Array.from({ length: n }, (_, i) => makeJob(`bench-single-${i}`));
  const single = await submitJobs(store, singles);
  ctx.progress(`arrays: ${n} single jobs submitted in ${single.seconds.toFixed(3)} s`);
  const singleTiming = await placeBurst(ctx, singles);
  const arraySettled = await quiet(ctx);

  const started = performance.now();
  const plan = planDocument({ shell: 'true', cpu: `${options.jobCpu}m`, memory: options.jobMemory, array: `0-${n - 1}`, name: 'bench-array' });
  await new EtcdCluster(store).submitArray(plan);
  const submitSeconds = (performance.now() - started) / 1000;
  ctx.progress(`arrays: an array of ${n} tasks submitted in ${submitSeconds.toFixed(3)} s (planned and written)`);

  const details: ArrayDetails = {
    tasks: n,
    submitSeconds,
    submitTasksPerSec: n / submitSeconds,
    singleSubmitSeconds: single.seconds,
    placementsPerSec: null,
    singlePlacementsPerSec: singleTiming.placementsPerSec ?? null,
    placementRatio: null,
    startToFirstPlacementMs: null,
    singleStartToFirstPlacementMs: singleTiming.startToFirstPlacementMs ?? null,
    placementCpu: null,
    singlePlacementCpu: singleTiming.cpu,
    settled: [singleSettled, arraySettled],
  };
  result.details.arrays = details;
  const arrayTiming = await placeBurst(ctx, plan.jobs);
  details.placementsPerSec = arrayTiming.placementsPerSec ?? null;
  details.startToFirstPlacementMs = arrayTiming.startToFirstPlacementMs ?? null;
  details.placementCpu = arrayTiming.cpu;
  if (details.placementsPerSec !== null && details.singlePlacementsPerSec) details.placementRatio = details.placementsPerSec / details.singlePlacementsPerSec;
  ctx.progress(
    `arrays: tasks placed at ${Math.round(details.placementsPerSec ?? 0)}/s, single jobs at ${Math.round(details.singlePlacementsPerSec ?? 0)}/s (ratio ${details.placementRatio?.toFixed(2) ?? '-'}); ` +
      `master CPU while placing ${arrayTiming.cpu.master?.toFixed(2) ?? '?'} s and ${singleTiming.cpu.master?.toFixed(2) ?? '?'} s`,
  );
}
