import type { LatencySummary } from './percentiles.js';
import type { CpuSplit } from './proc-stats.js';

/** The run's parameters as they appear in the result (memory in bytes, CPU in millicores). */
export interface BenchParameters {
  nodes: number;
  jobs: number;
  rate: number;
  latencyJobs: number;
  warmupMs: number;
  nodeCpuMilli: number;
  nodeMemoryBytes: number;
  jobCpuMilli: number;
  jobMemoryBytes: number;
  complete: boolean;
  runMs: number;
  ackConcurrency: number;
  nodesPerLease: number;
  ackDuringPlacement: boolean;
  /** The master's --retain-jobs (--retain-jobs); null: above the run's job count, every job stays in etcd. */
  retainJobs: number | null;
  /** The master's retention sweep interval; null: the master's default. */
  retentionIntervalMs: number | null;
  etcd: 'own' | 'external';
  prefix: string;
}

/** Every job a run submits: the burst, the dispatch phase's warm-up and its measured jobs. */
export function jobsOfRun(p: Pick<BenchParameters, 'jobs' | 'latencyJobs' | 'rate' | 'warmupMs'>): number {
  return p.jobs + Math.round((p.rate * p.warmupMs) / 1000) + p.latencyJobs;
}

/** Everything one run measured. Headline figures are null when their phase did not run or failed. */
export interface BenchResult {
  etcdBatchedKeysPerSec: number | null;
  etcdSequentialPutsPerSec: number | null;
  submitJobsPerSec: number | null;
  placementsPerSec: number | null;
  placementEtcdRatio: number | null;
  dispatchP50Ms: number | null;
  dispatchP99Ms: number | null;
  masterRssMiB: number | null;
  /** etcd's database at the end state (every job of the run in etcd, unless --retain-jobs). */
  etcdDbMiB: number | null;
  /** etcd's database before the run wrote anything. */
  etcdDbMiBBefore: number | null;
  /** etcd's database after retention removed the ended jobs beyond --retain-jobs and compaction freed their history (null without --retain-jobs). */
  etcdDbMiBAfter: number | null;
  details: BenchDetails;
  parameters: BenchParameters;
  command: string;
  /** The commit measured (and whether the tree had uncommitted changes). */
  revision: string;
  machine: MachineInfo;
  /** One line per phase that failed or was cut short; empty for a clean run. */
  errors: string[];
}

export interface BenchDetails {
  etcdPutLatencyMs?: LatencySummary;
  /** The batched reference before the master started and at the end of the run (the headline is their mean). */
  etcdBatchedKeysPerSecSamples?: number[];
  submitSeconds?: number;
  submitTransactions?: number;
  /** Placements seen by the assignment watch, and the window from the first to the last. */
  placed?: number;
  placementWindowMs?: number;
  /** From starting the master process (20k jobs queued) to the first placement: startup, list, election, first pass. */
  masterStartToFirstPlacementMs?: number;
  placementCpu?: CpuSplit;
  /** Acknowledgements (Running, then Succeeded unless --no-complete) of the placed burst, per second. */
  ackedJobsPerSec?: number;
  ackSeconds?: number;
  ackCpu?: CpuSplit;
  ackFenced?: number;
  ackFailed?: number;
  dispatchMs?: LatencySummary;
  dispatchSubmitCallMs?: LatencySummary;
  /** A dispatch's two halves, split at the master's plan (Assignment.assignedAt, whole milliseconds of its clock, so each half is ±1 ms): submit → plan, and plan → the node's watch. */
  dispatchToPlanMs?: LatencySummary;
  dispatchPlanToSeenMs?: LatencySummary;
  /** How late each submit left against its schedule (a busy bench or machine delays the load itself). */
  dispatchSubmitLateMs?: LatencySummary;
  dispatchMissed?: number;
  /** The uncounted submits before the measured ones (--warmup), and their latency. */
  dispatchWarmupJobs?: number;
  dispatchWarmupMs?: LatencySummary;
  /** After a burst: the wait for the master to compact its history, and whether it did within the limit. */
  dispatchSettleSeconds?: number;
  dispatchSettled?: boolean;
  dispatchAchievedRate?: number;
  dispatchCpu?: CpuSplit;
  /** The same from the dispatch phase's start until the nodes acknowledged every job (Running and Succeeded): all the work the phase caused. */
  dispatchCpuToIdle?: CpuSplit;
  masterCpuSecondsTotal?: number;
  /** The master's peak RSS over the run (VmHWM; the headline is the RSS at the end). */
  masterPeakRssMiB?: number;
  etcdVersion?: string;
  /** Jobs under the bench prefix at the end (every job of the run, unless something removed some). */
  jobsInEtcd?: number;
  etcdDbInUseMiB?: number;
  /** The part of etcd's database file in use at the start and after retention and compaction (--retain-jobs). */
  etcdDbInUseMiBBefore?: number;
  etcdDbInUseMiBAfter?: number;
  /** Jobs left in etcd once retention was done (--retain-jobs). */
  jobsInEtcdAfterRetention?: number;
  /** From the start of the retention phase until etcd's space in use settled after the compaction. */
  retentionWaitSeconds?: number;
  totalSeconds?: number;
  /** 1-minute load average when the run ended (the machine is shared: context for every figure). */
  loadAverageAtEnd?: number;
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
  /** 1-minute load average when the run started. */
  loadAverageAtStart: number;
}

type Figure = Exclude<keyof BenchResult, 'details' | 'parameters' | 'command' | 'revision' | 'machine' | 'errors'>;

export interface Target {
  figure: Figure;
  /** 'min': the figure must be at least `value`; 'max': at most. */
  kind: 'min' | 'max';
  value: number;
  /** The conditions the target is stated for; undefined when the run matches them. */
  mismatch(p: BenchParameters): string | undefined;
}

const atLeast = (what: string, have: number, want: number): string | undefined => (have >= want ? undefined : `target is for ${want} ${what}, run had ${have}`);

/** The targets of the performance issue (docs/benchmarks.md). */
export const TARGETS: readonly Target[] = [
  { figure: 'placementsPerSec', kind: 'min', value: 10_000, mismatch: (p) => atLeast('nodes', p.nodes, 1000) ?? atLeast('queued jobs', p.jobs, 20_000) },
  { figure: 'dispatchP50Ms', kind: 'max', value: 10, mismatch: (p) => atLeast('submits/s', p.rate, 500) },
  { figure: 'dispatchP99Ms', kind: 'max', value: 40, mismatch: (p) => atLeast('submits/s', p.rate, 500) },
  { figure: 'submitJobsPerSec', kind: 'min', value: 20_000, mismatch: () => undefined },
  {
    figure: 'masterRssMiB',
    kind: 'max',
    value: 300,
    mismatch: (p) =>
      atLeast('jobs known', jobsOfRun(p), 100_000) ??
      (p.retainJobs !== null && p.retainJobs < jobsOfRun(p) ? `target is for every job still in etcd, run had --retain-jobs ${p.retainJobs}` : undefined),
  },
];

export type Verdict = 'met' | 'missed' | 'not measured';

export function verdict(target: Target, result: BenchResult): Verdict {
  const value = result[target.figure];
  if (value === null) return 'not measured';
  return (target.kind === 'min' ? value >= target.value : value <= target.value) ? 'met' : 'missed';
}

const FIGURES: readonly { figure: Figure; label: string; unit: string }[] = [
  { figure: 'etcdSequentialPutsPerSec', label: 'etcd sequential puts', unit: '/s' },
  { figure: 'etcdBatchedKeysPerSec', label: 'etcd batched keys (reference)', unit: '/s' },
  { figure: 'submitJobsPerSec', label: 'bulk submit', unit: ' jobs/s' },
  { figure: 'placementsPerSec', label: 'placements', unit: '/s' },
  { figure: 'placementEtcdRatio', label: 'placement keys / etcd reference', unit: '' },
  { figure: 'dispatchP50Ms', label: 'dispatch P50', unit: ' ms' },
  { figure: 'dispatchP99Ms', label: 'dispatch P99', unit: ' ms' },
  { figure: 'masterRssMiB', label: 'master RSS', unit: ' MiB' },
  { figure: 'etcdDbMiB', label: 'etcd db size', unit: ' MiB' },
  { figure: 'etcdDbMiBBefore', label: 'etcd db size at start', unit: ' MiB' },
  { figure: 'etcdDbMiBAfter', label: 'etcd db size after retention', unit: ' MiB' },
];

export function formatNumber(value: number): string {
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 100) return String(Math.round(value));
  return String(Number(value.toPrecision(3)));
}

/** Left-aligned columns separated by two spaces, a dashed rule under the header. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The human summary: every headline figure with its target and verdict, then the notable details. */
export function formatReport(result: BenchResult): string {
  const rows = FIGURES.map(({ figure, label, unit }) => {
    const value = result[figure];
    const target = TARGETS.find((t) => t.figure === figure);
    let targetText = '';
    let verdictText = '';
    if (target) {
      targetText = `${target.kind === 'min' ? '≥' : '≤'} ${formatNumber(target.value)}${unit}`;
      const mismatch = target.mismatch(result.parameters);
      verdictText = verdict(target, result) + (mismatch ? ` (${mismatch})` : '');
    }
    return [label, value === null ? '-' : `${formatNumber(value)}${unit}`, targetText, verdictText];
  });
  const p = result.parameters;
  const d = result.details;
  const out = [
    `Titan benchmark at ${result.revision}: ${p.nodes} simulated nodes, ${p.jobs} queued jobs, ${p.latencyJobs} jobs at ${p.rate}/s`,
    `machine: ${result.machine.cpus} CPUs (${result.machine.cpuModel}), load average ${formatNumber(result.machine.loadAverageAtStart)} at start, ${d.loadAverageAtEnd === undefined ? '?' : formatNumber(d.loadAverageAtEnd)} at end`,
    '',
    renderTable(['figure', 'value', 'target', 'verdict'], rows),
    '',
  ];
  const notes: string[] = [];
  if (d.masterPeakRssMiB !== undefined) notes.push(`master peak RSS: ${formatNumber(d.masterPeakRssMiB)} MiB`);
  if (d.masterStartToFirstPlacementMs !== undefined) notes.push(`master start to first placement: ${formatNumber(d.masterStartToFirstPlacementMs)} ms`);
  if (d.placementCpu) notes.push(`CPU during placement (${formatNumber(d.placementCpu.wallSeconds)} s wall): ${formatCpu(d.placementCpu)}`);
  if (d.ackedJobsPerSec !== undefined) notes.push(`simulated nodes acknowledged ${formatNumber(d.ackedJobsPerSec)} jobs/s`);
  if (d.ackCpu) notes.push(`CPU while nodes acknowledged (${formatNumber(d.ackCpu.wallSeconds)} s wall): ${formatCpu(d.ackCpu)}`);
  if (d.dispatchMs) notes.push(`dispatch: p90 ${formatNumber(d.dispatchMs.p90)} ms, max ${formatNumber(d.dispatchMs.max)} ms, missed ${d.dispatchMissed ?? 0}, achieved ${formatNumber(d.dispatchAchievedRate ?? 0)} submits/s`);
  if (d.dispatchSubmitCallMs) notes.push(`dispatch: the submit call alone took P50 ${formatNumber(d.dispatchSubmitCallMs.p50)} ms, P99 ${formatNumber(d.dispatchSubmitCallMs.p99)} ms`);
  if (d.dispatchToPlanMs && d.dispatchPlanToSeenMs) {
    const half = (l: LatencySummary): string => `P50 ${formatNumber(l.p50)} ms, P99 ${formatNumber(l.p99)} ms`;
    notes.push(`dispatch: submit to the master's plan ${half(d.dispatchToPlanMs)}; plan to the node's watch ${half(d.dispatchPlanToSeenMs)}`);
  }
  if (d.dispatchCpu) notes.push(`CPU during dispatch (${formatNumber(d.dispatchCpu.wallSeconds)} s wall): ${formatCpu(d.dispatchCpu)}`);
  const inUse = (mib: number | undefined): string => (mib === undefined ? '' : ` (${formatNumber(mib)} MiB in use)`);
  if (result.etcdDbMiBBefore !== null || result.etcdDbMiB !== null || result.etcdDbMiBAfter !== null) {
    const mib = (v: number | null): string => (v === null ? '-' : `${formatNumber(v)} MiB`);
    const after =
      result.etcdDbMiBAfter !== null
        ? `${mib(result.etcdDbMiBAfter)}${inUse(d.etcdDbInUseMiBAfter)} after retention to ${p.retainJobs ?? '?'} jobs (${d.jobsInEtcdAfterRetention ?? '?'} left) and compaction`
        : 'not measured after retention (--retain-jobs)';
    notes.push(
      `etcd db: ${mib(result.etcdDbMiBBefore)}${inUse(d.etcdDbInUseMiBBefore)} at start, ${mib(result.etcdDbMiB)}${inUse(d.etcdDbInUseMiB)} at the end state (${d.jobsInEtcd ?? '?'} jobs), ${after}`,
    );
  }
  out.push(...notes.map((n) => `  ${n}`));
  if (result.errors.length > 0) out.push('', 'errors:', ...result.errors.map((e) => `  ${e}`));
  return out.join('\n');
}

function formatCpu(cpu: CpuSplit): string {
  const part = (name: string, s: number | undefined) => (s === undefined ? `${name} ?` : `${name} ${formatNumber(s)} s`);
  const parts = [part('master', cpu.master), part('etcd', cpu.etcd), part('bench', cpu.bench)];
  if (cpu.host !== undefined && cpu.hostCapacity !== undefined) parts.push(`whole host ${formatNumber(cpu.host)} of ${formatNumber(cpu.hostCapacity)} s`);
  return parts.join(', ');
}
