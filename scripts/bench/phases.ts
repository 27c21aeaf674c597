import { submitJobs } from '../../internal/cli/bulk-submit.js';
import { buildJobSpec, newJobId, type Job } from '../../pkg/model/index.js';
import { encode, type Store } from '../../pkg/store/index.js';
import { compactedTo, countJobs, etcdDbSize, waitForRetention } from './etcd-retention.js';
import { measureEtcdReference } from './etcd-reference.js';
import type { MasterProcess } from './master-process.js';
import type { BenchOptions } from './options.js';
import { ratePerSecond, summarize } from './percentiles.js';
import { cpuWindow, type CpuSplit } from './proc-stats.js';
import type { BenchResult } from './report.js';
import type { AckOutcome, SimNodes } from './sim-nodes.js';
import { sleep, waitFor } from './wait.js';

/** What every phase works with. */
export interface BenchContext {
  options: BenchOptions;
  store: Store;
  nodes: SimNodes;
  master: MasterProcess;
  /** The local etcd's pid (for its CPU time); undefined with --endpoints. */
  etcdPid?: number;
  result: BenchResult;
  progress(message: string): void;
}

/** Small jobs that fit anywhere; createdAt is stamped when the job is made, right before its submit. */
export function jobFactory(options: Pick<BenchOptions, 'jobCpu' | 'jobMemory'>): (name: string) => Job {
  const spec = buildJobSpec({ shell: 'true', cpu: `${options.jobCpu}m`, memory: options.jobMemory });
  return (name) => ({ ...spec, name, id: newJobId(), state: 'Pending', createdAt: Date.now(), attempt: 0 });
}

/** How many bench jobs the simulated cluster holds at once. */
export function clusterCapacityInJobs(options: Pick<BenchOptions, 'nodes' | 'nodeCpu' | 'nodeMemory' | 'jobCpu' | 'jobMemory'>): number {
  const perNode = Math.min(Math.floor(options.nodeCpu / options.jobCpu), Math.floor(options.nodeMemory / options.jobMemory));
  return perNode * options.nodes;
}

const phaseTimeoutMs = (ctx: BenchContext): number => ctx.options.phaseTimeoutSeconds * 1000;

// ---- etcd reference -----------------------------------------------------------

/**
 * Raw etcd throughput on the same etcd, in the same run. The machine may be
 * shared and noisy, so the batched reference is taken twice: right before
 * the master starts (next to the placement measurement) and at the very end
 * (where its writes touch no other figure). The headline is their mean; both
 * samples are kept. Sequential puts are measured once.
 */
export async function etcdReferencePhase(ctx: BenchContext, withSequential: boolean): Promise<void> {
  const { options, result, store } = ctx;
  const sequentialPuts = withSequential ? options.etcdSequentialPuts : 0;
  ctx.progress(
    `etcd reference: ${options.etcdKeys} keys in transactions of ${options.etcdTxnPuts} puts, ${options.etcdInFlight} in flight` +
      (sequentialPuts > 0 ? `; ${sequentialPuts} sequential puts` : ''),
  );
  // A value the size of a scheduled job, so the reference compares with placement writes.
  const sample = jobFactory(options)('bench-reference');
  const value = encode({ ...sample, state: 'Scheduled', node: 'sim-00001', attempt: 1, scheduledAt: Date.now(), gpuDevices: [] });
  const ref = await measureEtcdReference(store, {
    keys: options.etcdKeys,
    perTxn: options.etcdTxnPuts,
    inFlight: options.etcdInFlight,
    sequentialPuts,
    value,
  });
  if (ctx.etcdPid !== undefined) {
    // The scratch keys' history (tens of thousands of versions) would double etcd's CPU per request
    // until the next compaction, which the master may not reach within the run (docs/benchmarks.md).
    // Only an etcd the bench started: compaction is cluster-wide.
    await store.compact(await store.currentRevision());
  }
  const d = result.details;
  if (ref.batchedKeysPerSec !== undefined) {
    d.etcdBatchedKeysPerSecSamples = [...(d.etcdBatchedKeysPerSecSamples ?? []), ref.batchedKeysPerSec];
    result.etcdBatchedKeysPerSec = d.etcdBatchedKeysPerSecSamples.reduce((a, b) => a + b, 0) / d.etcdBatchedKeysPerSecSamples.length;
  }
  if (sequentialPuts > 0) {
    result.etcdSequentialPutsPerSec = ref.sequentialPutsPerSec ?? null;
    if (ref.putLatencyMs) d.etcdPutLatencyMs = ref.putLatencyMs;
  }
  if (result.placementsPerSec !== null && result.etcdBatchedKeysPerSec) {
    result.placementEtcdRatio = (2 * result.placementsPerSec) / result.etcdBatchedKeysPerSec;
  }
  ctx.progress(
    `etcd reference: ${Math.round(ref.batchedKeysPerSec ?? 0)} batched keys/s` +
      (sequentialPuts > 0 ? `, ${Math.round(ref.sequentialPutsPerSec ?? 0)} sequential puts/s` : ''),
  );
}

// ---- the burst: submit, placement, acknowledgements ---------------------------

/**
 * Follows one set of jobs through the simulated nodes: when each was placed
 * (seen by the assignment watch) and acknowledged.
 */
export class BurstTracker {
  placed = 0;
  firstPlacedAt: number | undefined;
  lastPlacedAt: number | undefined;
  finished = 0;
  fenced = 0;
  failed = 0;
  private readonly unsubscribe: (() => void)[];

  constructor(
    nodes: SimNodes,
    readonly ids: ReadonlySet<string>,
    private readonly finalAck: AckOutcome,
  ) {
    this.unsubscribe = [
      nodes.onAssigned((seen) => {
        for (const s of seen) {
          if (!ids.has(s.jobId)) continue;
          this.placed++;
          this.firstPlacedAt ??= s.seenAt;
          this.lastPlacedAt = s.seenAt;
        }
      }),
      nodes.onAck((jobId, outcome) => {
        if (!ids.has(jobId)) return;
        if (outcome === this.finalAck) this.finished++;
        else if (outcome === 'fenced') this.fenced++;
        else if (outcome === 'failed') this.failed++;
      }),
    ];
  }

  /** Jobs whose acknowledgement is over, one way or another. */
  settled(): number {
    return this.finished + this.fenced + this.failed;
  }

  dispose(): void {
    for (const u of this.unsubscribe) u();
  }
}

/** Bulk submission of the burst through the CLI's code path, with the master not running yet. */
export async function submitPhase(ctx: BenchContext): Promise<Set<string>> {
  const { options, result } = ctx;
  const makeJob = jobFactory(options);
  const jobs = Array.from({ length: options.jobs }, (_, i) => makeJob(`bench-${i}`));
  ctx.progress(`submit: ${jobs.length} jobs through submitJobs (8 transactions of 64 in flight), master not running yet`);
  let lastReport = performance.now();
  const res = await submitJobs(ctx.store, jobs, {
    onProgress: (done, total) => {
      if (performance.now() - lastReport < 2000) return;
      lastReport = performance.now();
      ctx.progress(`submit: ${done}/${total}`);
    },
  });
  result.submitJobsPerSec = res.jobsPerSec;
  result.details.submitSeconds = res.seconds;
  result.details.submitTransactions = res.transactions;
  ctx.progress(`submit: ${res.submitted} jobs in ${res.seconds.toFixed(2)} s = ${Math.round(res.jobsPerSec)} jobs/s`);
  return new Set(res.ids);
}

/** What one placement burst measured: placements from the first to the last, as the assignment watch saw them. */
export interface PlacementTiming {
  placed: number;
  cpu: CpuSplit;
  /** Absent when nothing was placed. */
  windowMs?: number;
  startToFirstPlacementMs?: number;
  placementsPerSec?: number;
  /** Set when the burst was not all placed: why. */
  failure?: string;
}

/**
 * Starts the master with the burst queued (or, with `handover`, hands
 * leadership to a master already running) and times placements from the
 * first to the last, as the assignment watch sees them.
 */
export async function timePlacement(ctx: BenchContext, burst: BurstTracker, handover?: () => Promise<void>): Promise<PlacementTiming> {
  const { options, master, nodes } = ctx;
  const total = burst.ids.size;
  if (!options.ackDuringPlacement) nodes.holdAcks();
  const cpu = cpuWindow(() => master.pid, ctx.etcdPid);
  const startedAt = performance.now();
  ctx.progress(`placement: ${handover ? 'handing leadership to the running master' : 'starting the master'} with ${total} jobs queued on ${options.nodes} nodes`);
  if (handover) await handover();
  else master.start();
  const outcome = await waitFor(() => burst.placed >= total, {
    timeoutMs: phaseTimeoutMs(ctx),
    failure: () => master.failure(),
    progress: () => ctx.progress(`placement: ${burst.placed}/${total} placed`),
  });
  const timing: PlacementTiming = { placed: burst.placed, cpu: cpu.end() };
  const { firstPlacedAt, lastPlacedAt } = burst;
  if (firstPlacedAt !== undefined && lastPlacedAt !== undefined) {
    timing.windowMs = lastPlacedAt - firstPlacedAt;
    timing.startToFirstPlacementMs = firstPlacedAt - startedAt;
    timing.placementsPerSec = ratePerSecond(burst.placed, timing.windowMs);
    ctx.progress(
      `placement: ${burst.placed} placed in ${(timing.windowMs / 1000).toFixed(2)} s = ${Math.round(timing.placementsPerSec ?? 0)}/s (first after ${Math.round(timing.startToFirstPlacementMs)} ms)`,
    );
  }
  if (!outcome.ok) timing.failure = `placement: ${burst.placed} of ${total} placed, then ${outcome.reason}`;
  return timing;
}

/** The placement phase: the burst's placements timed (timePlacement), the headline placementsPerSec. */
export async function placementPhase(ctx: BenchContext, burst: BurstTracker, handover?: () => Promise<void>): Promise<void> {
  const { result } = ctx;
  const timing = await timePlacement(ctx, burst, handover);
  result.details.placementCpu = timing.cpu;
  result.details.placed = timing.placed;
  if (timing.windowMs !== undefined && timing.startToFirstPlacementMs !== undefined) {
    result.details.placementWindowMs = timing.windowMs;
    if (handover) result.details.handoverToFirstPlacementMs = timing.startToFirstPlacementMs;
    else result.details.masterStartToFirstPlacementMs = timing.startToFirstPlacementMs;
    const rate = timing.placementsPerSec;
    result.placementsPerSec = rate ?? null;
    if (rate !== undefined && result.etcdBatchedKeysPerSec) result.placementEtcdRatio = (2 * rate) / result.etcdBatchedKeysPerSec;
  }
  if (timing.failure !== undefined) throw new Error(timing.failure);
}

/** What acknowledging one burst took. */
export interface AckTiming {
  seconds: number;
  cpu: CpuSplit;
  finished: number;
  fenced: number;
  failed: number;
  jobsPerSec?: number;
  failure?: string;
}

/** Lets the simulated nodes acknowledge the burst (Running, then Succeeded) and waits until they did. */
export async function timeAcks(ctx: BenchContext, burst: BurstTracker): Promise<AckTiming> {
  const { options, nodes, master } = ctx;
  const total = burst.ids.size;
  const finishedBefore = burst.finished;
  const cpu = cpuWindow(() => master.pid, ctx.etcdPid);
  const started = performance.now();
  ctx.progress(`acknowledge: nodes report ${options.complete ? 'Running then Succeeded' : 'Running'} for ${total} jobs`);
  nodes.releaseAcks();
  const outcome = await waitFor(() => burst.settled() >= total, {
    timeoutMs: phaseTimeoutMs(ctx),
    failure: () => master.failure(),
    progress: () => ctx.progress(`acknowledge: ${burst.settled()}/${total} (${JSON.stringify(nodes.stats())})`),
  });
  const seconds = (performance.now() - started) / 1000;
  const timing: AckTiming = { seconds, cpu: cpu.end(), finished: burst.finished, fenced: burst.fenced, failed: burst.failed };
  const rate = ratePerSecond(burst.finished - finishedBefore, seconds * 1000);
  if (rate !== undefined) timing.jobsPerSec = rate;
  ctx.progress(`acknowledge: ${burst.finished} jobs in ${seconds.toFixed(2)} s (${burst.fenced} fenced, ${burst.failed} failed)`);
  if (!outcome.ok) timing.failure = `acknowledge: ${burst.settled()} of ${total} acknowledged, then ${outcome.reason}`;
  return timing;
}

/** The acknowledge phase: timeAcks for the burst, into the run's details. */
export async function drainPhase(ctx: BenchContext, burst: BurstTracker): Promise<void> {
  const { result } = ctx;
  const timing = await timeAcks(ctx, burst);
  result.details.ackCpu = timing.cpu;
  result.details.ackSeconds = timing.seconds;
  result.details.ackFenced = timing.fenced;
  result.details.ackFailed = timing.failed;
  if (timing.jobsPerSec !== undefined) result.details.ackedJobsPerSec = timing.jobsPerSec;
  if (timing.failure !== undefined) throw new Error(timing.failure);
}

// ---- dispatch latency -----------------------------------------------------------

/** Starts the master if no earlier phase did, and waits until it leads. */
export async function ensureLeadingMaster(ctx: BenchContext): Promise<void> {
  const { master, store } = ctx;
  if (!master.running()) {
    const earlier = master.failure();
    ctx.progress(earlier ? 'restarting the master, which exited earlier' : 'starting the master');
    master.start();
  }
  for (const deadline = performance.now() + 30_000; performance.now() < deadline; ) {
    const failure = master.failure();
    if (failure) throw new Error(failure);
    if (await store.leaderTerm()) return;
    await sleep(100);
  }
  throw new Error('the master did not become leader within 30 s');
}

/** How long the dispatch phase waits for the burst's history to be compacted. */
const SETTLE_LIMIT_MS = 30_000;

/**
 * After a burst: waits until the master has compacted etcd's history past
 * it and etcd has done the work (its space in use settled; at most
 * SETTLE_LIMIT_MS in all), so the dispatch phase measures the steady
 * rate rather than the burst's aftermath. The phase's own history is
 * compacted while it runs: 5,000 jobs at 500/s span two of the master's
 * 5 s compaction windows.
 */
async function settleAfterBurst(ctx: BenchContext): Promise<void> {
  const settle = await settleHistory(ctx, 'dispatch');
  ctx.result.details.dispatchSettleSeconds = settle.seconds;
  ctx.result.details.dispatchSettled = settle.settled;
}

/**
 * Waits (at most SETTLE_LIMIT_MS) until the running master has compacted
 * etcd's history up to now and etcd's space in use stopped moving: the
 * work a burst leaves behind is then done, not charged to what comes next.
 */
export async function settleHistory(ctx: BenchContext, phase: string): Promise<{ seconds: number; settled: boolean }> {
  const { store, master } = ctx;
  const started = performance.now();
  const revision = BigInt(await store.currentRevision());
  ctx.progress(`${phase}: waiting for the master to compact the burst's history (revision ${revision})`);
  let settled = false;
  while (!(settled = await compactedTo(store, revision)) && performance.now() - started < SETTLE_LIMIT_MS) {
    const failure = master.failure();
    if (failure) throw new Error(`${phase}: ${failure}`);
    await sleep(250);
  }
  // etcd deletes the compacted versions in the background: wait until its space in use stops moving.
  for (let last = -1, size = (await etcdDbSize(store)).inUseMiB; settled && size !== last && performance.now() - started < SETTLE_LIMIT_MS; ) {
    await sleep(250);
    last = size;
    size = (await etcdDbSize(store)).inUseMiB;
  }
  const seconds = (performance.now() - started) / 1000;
  if (!settled) ctx.progress(`${phase}: the burst's history was not compacted within ${SETTLE_LIMIT_MS / 1000} s; measuring anyway`);
  return { seconds, settled };
}

/**
 * Open-loop submits at a fixed rate, one job per submit call: each submit is
 * due at start + i / rate whether or not earlier ones returned (a slow
 * system cannot slow the load down and hide its latency). Latency is from
 * just before the submit call to the simulated node's watch delivering the
 * assignment, both on this process's monotonic clock.
 */
export async function dispatchPhase(ctx: BenchContext): Promise<void> {
  const { options, result, nodes, master, store } = ctx;
  // The first submits warm the path up after the quiet settle (JIT, heap sizes): same schedule, not counted.
  const warmup = Math.round((options.rate * options.warmupMs) / 1000);
  const n = warmup + options.latencyJobs;
  const makeJob = jobFactory(options);
  const submittedAt = new Map<string, { t0: number; counted: boolean }>();
  const latencies: number[] = [];
  const warmupLatencies: number[] = [];
  // The two halves of a counted dispatch, split at the master's plan (its wall clock; same host).
  const toPlanMs: number[] = [];
  const planToSeenMs: number[] = [];
  const wallOf = (monotonic: number): number => performance.timeOrigin + monotonic;
  const callMs: number[] = [];
  let submitErrors = 0;
  let firstError: string | undefined;
  const unsubscribe = nodes.onAssigned((seen) => {
    for (const s of seen) {
      const submit = submittedAt.get(s.jobId);
      if (submit === undefined) continue;
      (submit.counted ? latencies : warmupLatencies).push(s.seenAt - submit.t0);
      if (submit.counted) {
        toPlanMs.push(s.assignedAt - wallOf(submit.t0));
        planToSeenMs.push(wallOf(s.seenAt) - s.assignedAt);
      }
      submittedAt.delete(s.jobId);
    }
  });
  const calls: Promise<void>[] = [];
  const lateMs: number[] = [];
  const fire = (i: number, due: number): void => {
    const job = makeJob(`latency-${i}`);
    const t0 = performance.now();
    lateMs.push(t0 - due);
    submittedAt.set(job.id, { t0, counted: i >= warmup });
    calls.push(
      submitJobs(store, [job], { concurrency: 1 }).then(
        () => void callMs.push(performance.now() - t0),
        (err: unknown) => {
          submitErrors++;
          submittedAt.delete(job.id);
          firstError ??= err instanceof Error ? err.message : String(err);
        },
      ),
    );
  };

  if (options.jobs > 0) await settleAfterBurst(ctx);
  ctx.progress(`dispatch: ${options.latencyJobs} jobs after ${warmup} uncounted, one per submit call, at ${options.rate}/s`);
  const cpu = cpuWindow(() => master.pid, ctx.etcdPid);
  try {
    const start = performance.now();
    const interval = 1000 / options.rate;
    let lastReport = start;
    let i = 0;
    while (i < n) {
      const now = performance.now();
      const due = start + i * interval;
      if (due > now) {
        await sleep(due - now);
        continue;
      }
      while (i < n && start + i * interval <= performance.now()) {
        fire(i, start + i * interval);
        i++;
      }
      if (now - lastReport >= 2000) {
        lastReport = now;
        ctx.progress(`dispatch: ${i}/${n} submitted, ${latencies.length} seen by their node`);
      }
      if (master.failure()) break;
    }
    const spanMs = performance.now() - start;
    result.details.dispatchAchievedRate = i > 1 ? ((i - 1) * 1000) / spanMs : undefined;
    await Promise.all(calls);
    const outcome = await waitFor(() => latencies.length + warmupLatencies.length + submitErrors >= i, {
      timeoutMs: Math.min(phaseTimeoutMs(ctx), 60_000),
      failure: () => master.failure(),
      progress: () => ctx.progress(`dispatch: waiting for ${submittedAt.size} assignments`),
    });
    result.details.dispatchCpu = cpu.end();
    const summary = summarize(latencies);
    if (summary) {
      result.dispatchP50Ms = summary.p50;
      result.dispatchP99Ms = summary.p99;
      result.details.dispatchMs = summary;
    }
    result.details.dispatchWarmupJobs = warmup;
    const warm = summarize(warmupLatencies);
    if (warm) result.details.dispatchWarmupMs = warm;
    const toPlan = summarize(toPlanMs);
    if (toPlan) result.details.dispatchToPlanMs = toPlan;
    const planToSeen = summarize(planToSeenMs);
    if (planToSeen) result.details.dispatchPlanToSeenMs = planToSeen;
    const late = summarize(lateMs);
    if (late) result.details.dispatchSubmitLateMs = late;
    const callSummary = summarize(callMs);
    if (callSummary) result.details.dispatchSubmitCallMs = callSummary;
    result.details.dispatchMissed = submittedAt.size;
    ctx.progress(
      `dispatch: ${latencies.length} seen, P50 ${summary?.p50.toFixed(1) ?? '-'} ms, P99 ${summary?.p99.toFixed(1) ?? '-'} ms, ${submittedAt.size} missed, ${submitErrors} submit errors`,
    );
    if (submitErrors > 0) throw new Error(`dispatch: ${submitErrors} submits failed, the first with: ${firstError}`);
    if (i < n) throw new Error(`dispatch: stopped after ${i} of ${n} submits: ${master.failure() ?? 'unknown'}`);
    if (!outcome.ok) throw new Error(`dispatch: ${submittedAt.size} assignments never seen: ${outcome.reason}`);
  } finally {
    unsubscribe();
  }
  // Leave the cluster quiet for the final measurements.
  const idle = await waitFor(() => nodes.isIdle(), { timeoutMs: 30_000 + options.runMs, failure: () => master.failure() });
  if (idle.ok) result.details.dispatchCpuToIdle = cpu.end();
}

// ---- the end state ----------------------------------------------------------------

/** Master memory with every job of the run still in etcd, and the size of etcd's database. */
export async function finalPhase(ctx: BenchContext): Promise<void> {
  const { result, master, store } = ctx;
  const rss = master.rssMiB();
  result.masterRssMiB = rss ?? null;
  const peak = master.peakRssMiB();
  if (peak !== undefined) result.details.masterPeakRssMiB = peak;
  const lost = master.leadershipLosses();
  if (lost !== undefined) result.details.masterLeadershipLost = lost;
  const cpuTotal = master.cpuSeconds();
  if (cpuTotal !== undefined) result.details.masterCpuSecondsTotal = cpuTotal;
  result.details.jobsInEtcd = (await countJobs(store)).count;
  const size = await etcdDbSize(store);
  result.etcdDbMiB = size.dbMiB;
  result.details.etcdDbInUseMiB = size.inUseMiB;
  result.details.etcdVersion = size.version;
  ctx.progress(`end: ${result.details.jobsInEtcd} jobs in etcd, master RSS ${rss?.toFixed(1) ?? '?'} MiB, etcd db ${result.etcdDbMiB.toFixed(1)} MiB`);
}

// ---- etcd's database: at the start, and after retention -----------------------------

/** etcd's database size before the run writes anything. */
export async function etcdDbStartPhase(ctx: BenchContext): Promise<void> {
  const { result, store } = ctx;
  const size = await etcdDbSize(store);
  result.etcdDbMiBBefore = size.dbMiB;
  result.details.etcdDbInUseMiBBefore = size.inUseMiB;
  ctx.progress(`etcd db at start: ${size.dbMiB.toFixed(1)} MiB (${size.inUseMiB.toFixed(1)} MiB in use)`);
}

/** With --retain-jobs, last: etcd's database once retention and compaction are through (waitForRetention). */
export async function retentionPhase(ctx: BenchContext): Promise<void> {
  const { options, result, store, master } = ctx;
  const retain = options.retainJobs ?? 0;
  const started = performance.now();
  ctx.progress(`retention: waiting for the master to keep at most ${retain} ended jobs (a sweep every ${(options.retentionIntervalMs ?? 60_000) / 1000} s), then to compact`);

  const deadline = started + phaseTimeoutMs(ctx);
  const stillOn = (what: string): void => {
    const failure = master.failure();
    if (failure) throw new Error(`retention: ${failure}`);
    if (performance.now() > deadline) throw new Error(`retention: timed out ${what}`);
  };

  // Only ended jobs are removed: with --no-complete none ended, and there is nothing to wait for.
  if (!options.complete) ctx.progress('retention: --no-complete: no job ended, so retention removes none');
  const { jobsLeft, size } = await waitForRetention(store, {
    retain: options.complete ? retain : Infinity,
    check: stillOn,
    progress: ctx.progress,
    onCount: (count) => (result.details.jobsInEtcdAfterRetention = count),
  });
  result.etcdDbMiBAfter = size.dbMiB;
  result.details.etcdDbInUseMiBAfter = size.inUseMiB;
  result.details.retentionWaitSeconds = (performance.now() - started) / 1000;
  ctx.progress(
    `retention: ${jobsLeft} jobs left; etcd db ${size.dbMiB.toFixed(1)} MiB, ${size.inUseMiB.toFixed(1)} MiB in use ` +
      `(at start ${result.etcdDbMiBBefore?.toFixed(1) ?? '?'} MiB)`,
  );
}
