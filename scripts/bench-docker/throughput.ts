import os from 'node:os';
import { submitJobs } from '../../internal/cli/bulk-submit.js';
import { isFinal, type Job, type JobState } from '../../pkg/model/index.js';
import type { Store } from '../../pkg/store/index.js';
import { cpuSeconds, cpuWindow } from '../bench/proc-stats.js';
import { waitFor } from '../bench/wait.js';

/** What a Titan round needs to see the jobs it submits. */
export interface JobView {
  jobs: ReadonlyMap<string, Job>;
  count(ids: readonly string[], pass: (state: JobState) => boolean): number;
}

export interface TitanRound {
  succeeded: number;
  seconds: number;
  submitSeconds: number;
  /** From the submit to the first and last claim, and to the last end. */
  firstClaimMs: number;
  lastClaimMs: number;
  lastEndMs: number;
  /** Each job's claim → end. */
  runMs: number[];
  /** CPU-seconds over the round: Titan's own processes and the whole host (Docker's engine, shims and containers included). */
  cpu: { worker?: number; launcher?: number; master?: number; etcd?: number; bench?: number; host?: number; hostCapacity: number };
  error?: string;
}

/** Submits the jobs in bulk (as `titan submit -n` does) and waits until all have ended. */
export async function runTitanRound(
  store: Store,
  view: JobView,
  jobs: Job[],
  pids: { worker: () => number | undefined; launcher?: () => number | undefined; master: () => number | undefined; etcd: number | undefined },
  failure: () => string | undefined,
  progress: (message: string) => void,
): Promise<TitanRound> {
  const ids = jobs.map((j) => j.id);
  const n = ids.length;
  const started = performance.now();
  const cpu = cpuWindow(pids.master, pids.etcd);
  const workerBefore = cpuSeconds(pids.worker());
  // The worker starts its launcher at its first shell job: one not running yet has used nothing.
  const launcherBefore = pids.launcher ? (cpuSeconds(pids.launcher()) ?? 0) : undefined;
  const submit = await submitJobs(store, jobs);
  const done = await waitFor(() => view.count(ids, isFinal) === n, {
    timeoutMs: 600_000,
    failure,
    progress: () => progress(`titan: ${view.count(ids, (st) => st === 'Succeeded')}/${n} succeeded`),
  });
  const seconds = (performance.now() - started) / 1000;
  const split = cpu.end();
  const workerAfter = cpuSeconds(pids.worker());
  const launcherAfter = pids.launcher ? cpuSeconds(pids.launcher()) : undefined;
  const succeeded = view.count(ids, (st) => st === 'Succeeded');
  const ended = ids.flatMap((id) => {
    const j = view.jobs.get(id);
    return j?.startedAt !== undefined && j.finishedAt !== undefined ? [{ startedAt: j.startedAt, finishedAt: j.finishedAt }] : [];
  });
  const submittedAt = jobs[0].createdAt;
  return {
    succeeded,
    seconds,
    submitSeconds: submit.seconds,
    firstClaimMs: Math.min(...ended.map((r) => r.startedAt)) - submittedAt,
    lastClaimMs: Math.max(...ended.map((r) => r.startedAt)) - submittedAt,
    lastEndMs: Math.max(...ended.map((r) => r.finishedAt)) - submittedAt,
    runMs: ended.map((r) => r.finishedAt - r.startedAt),
    cpu: {
      worker: difference(workerAfter, workerBefore),
      ...(pids.launcher ? { launcher: difference(launcherAfter, launcherBefore) } : {}),
      master: split.master,
      etcd: split.etcd,
      bench: split.bench,
      host: split.host,
      hostCapacity: split.hostCapacity ?? seconds * os.cpus().length,
    },
    ...(done.ok ? {} : { error: done.reason }),
  };
}

/** after − before, when both samples exist. */
export const difference = (after: number | undefined, before: number | undefined): number | undefined =>
  after !== undefined && before !== undefined ? after - before : undefined;

/** Containers per second over several rounds: all their containers over all their seconds. */
export function overallRate(rounds: readonly { count: number; seconds: number }[]): number {
  const seconds = rounds.reduce((s, r) => s + r.seconds, 0);
  return seconds > 0 ? rounds.reduce((s, r) => s + r.count, 0) / seconds : 0;
}

/** Sum of one CPU figure over rounds; undefined if any round lacks it. */
export function sumOf(values: readonly (number | undefined)[]): number | undefined {
  let total = 0;
  for (const v of values) {
    if (v === undefined) return undefined;
    total += v;
  }
  return total;
}
