import type { ArrayDetails } from './array-phase.js';
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
  /** Dashboard clients of --api; null without it. */
  apiClients: number | null;
}

/** Every job a run submits: the burst, the dispatch phase's warm-up and its measured jobs; with --api both twice, and the followed job. */
export function jobsOfRun(p: Pick<BenchParameters, 'jobs' | 'latencyJobs' | 'rate' | 'warmupMs' | 'apiClients'>): number {
  const once = p.jobs + Math.round((p.rate * p.warmupMs) / 1000) + p.latencyJobs;
  return p.apiClients === null ? once : 2 * once + 1;
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
  /** --api: the figures with the API clients on, their ratio to the same figures without, and the API's own; null without --api. */
  api: ApiFigures | null;
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
  /** --api: from the bench giving up the leadership it held to the first placement of the master that was waiting for it. */
  handoverToFirstPlacementMs?: number;
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
  /** Times a master of the run stepped down as leader (its log's "no longer leader"): a starved event loop misses its lease keepalives. */
  masterLeadershipLost?: number;
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
  api?: ApiDetails;
  /** The arrays phase (--array-tasks): an array against as many single jobs, last in the run. */
  arrays?: ArrayDetails;
}

/**
 * What --api measured. "Loaded": with the dashboard clients and the log
 * follower on the API; the unloaded figures are the headline ones
 * (placementsPerSec, dispatchP50Ms, dispatchP99Ms), measured the same way in
 * the same run.
 */
export interface ApiFigures {
  clients: number;
  logFollowers: number;
  placementsPerSecLoaded: number | null;
  /** Loaded ÷ unloaded: placements/s want ≥ 0.9, dispatch latencies ≤ 1.1 (within 10%). */
  placementRatio: number | null;
  dispatchP50MsLoaded: number | null;
  dispatchP99MsLoaded: number | null;
  dispatchP50Ratio: number | null;
  dispatchP99Ratio: number | null;
  /** GET /v1/jobs?limit=100 P99 with details.api.jobsAtProbe jobs in etcd: no client on the API, then with the clients on. */
  jobsPageP99Ms: number | null;
  jobsPageP99MsLoaded: number | null;
  /** GET /v1/jobs?state=Failed&limit=100 P99: no bench job fails, so every answer scans the whole list. */
  jobsFilteredP99Ms: number | null;
  jobsFilteredP99MsLoaded: number | null;
  /** The reference, from the same probe process between the API calls: an etcd range read of the jobs prefix, limit 100. */
  etcdRangeP99Ms: number | null;
  etcdRangeP99MsLoaded: number | null;
  /** jobsPageP99Ms ÷ etcdRangeP99Ms, unloaded. */
  jobsPageEtcdRatio: number | null;
  /** From the simulated worker's flush (right before the etcd put of the chunk) to the follower receiving the line. */
  logStreamP50Ms: number | null;
  logStreamP99Ms: number | null;
}

/** A probe's samples summarized: each kind of call, over `rounds` rounds. */
export interface ApiProbeDetails {
  rounds: number;
  seconds: number;
  pageMs?: LatencySummary;
  filteredMs?: LatencySummary;
  etcdRangeMs?: LatencySummary;
  /** Jobs in the last answers (limit 100 each; the filtered one should have none). */
  pageJobs: number;
  filteredJobs: number;
  etcdKeys: number;
  errors: number;
  firstError?: string;
}

/** One run of the load process: a window with the clients on. */
export interface ApiLoadSessionDetails {
  name: string;
  seconds: number;
  /** CPU seconds of the load process (it shares the machine with the master and etcd). */
  cpuSeconds: number;
  /** Answers to the dashboard clients' blocking reads, per path. */
  answers: Record<string, number>;
  errors: number;
  firstError?: string;
  logEvents: number;
  logLinesMissing: number;
  logLinesRepeated: number;
  logReconnects: number;
}

export interface ApiDetails {
  /** Jobs under the prefix while the probes ran. */
  jobsAtProbe?: number;
  probe?: ApiProbeDetails;
  probeLoaded?: ApiProbeDetails;
  sessions: ApiLoadSessionDetails[];
  logStreamMs?: LatencySummary;
  /** The chunks' etcd puts, as the simulated worker timed them. */
  logPutMs?: LatencySummary;
  logChunksWritten?: number;
  /** The loaded burst's and dispatch phase's own details, as the unloaded ones appear in the top-level details. */
  placementLoaded?: BenchDetails;
  dispatchLoaded?: BenchDetails;
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

type Figure = Exclude<keyof BenchResult, 'api' | 'details' | 'parameters' | 'command' | 'revision' | 'machine' | 'errors'>;

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

type ApiRatio = 'placementRatio' | 'dispatchP50Ratio' | 'dispatchP99Ratio';

/** The requirement of --api: with the clients on, the placement figures stay within 10% of the same run without them. */
export const API_TARGETS: readonly { figure: ApiRatio; kind: 'min' | 'max'; value: number }[] = [
  { figure: 'placementRatio', kind: 'min', value: 0.9 },
  { figure: 'dispatchP50Ratio', kind: 'max', value: 1.1 },
  { figure: 'dispatchP99Ratio', kind: 'max', value: 1.1 },
];

export function apiVerdict(target: (typeof API_TARGETS)[number], api: ApiFigures): Verdict {
  const value = api[target.figure];
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
  if (d.masterLeadershipLost) notes.push(`the master lost its leadership ${d.masterLeadershipLost} times (its log says why)`);
  if (d.masterStartToFirstPlacementMs !== undefined) notes.push(`master start to first placement: ${formatNumber(d.masterStartToFirstPlacementMs)} ms`);
  if (d.handoverToFirstPlacementMs !== undefined) notes.push(`leadership handed over to first placement: ${formatNumber(d.handoverToFirstPlacementMs)} ms`);
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
  if (d.arrays) {
    const a = d.arrays;
    const rate = (v: number | null): string => (v === null ? '-' : `${formatNumber(v)}/s`);
    notes.push(
      `arrays: ${a.tasks} tasks submitted in ${formatNumber(a.submitSeconds)} s (${formatNumber(a.submitTasksPerSec)} tasks/s, planning included; ` +
        `${a.tasks} single jobs: ${formatNumber(a.singleSubmitSeconds)} s); placed at ${rate(a.placementsPerSec)} against ${rate(a.singlePlacementsPerSec)} ` +
        `for single jobs (ratio ${a.placementRatio === null ? '-' : formatNumber(a.placementRatio)}, want ≥ 0.9)`,
    );
    if (a.placementCpu && a.singlePlacementCpu) notes.push(`arrays: CPU while placing the array: ${formatCpu(a.placementCpu)}; the single jobs: ${formatCpu(a.singlePlacementCpu)}`);
  }
  out.push(...notes.map((n) => `  ${n}`));
  if (result.api) out.push('', formatApiReport(result, result.api));
  if (result.errors.length > 0) out.push('', 'errors:', ...result.errors.map((e) => `  ${e}`));
  return out.join('\n');
}

/** The --api part: each compared figure without and with the clients, their ratio and verdict, then the API's own figures. */
export function formatApiReport(result: BenchResult, api: ApiFigures): string {
  const d = result.details.api;
  const value = (v: number | null, unit: string): string => (v === null ? '-' : `${formatNumber(v)}${unit}`);
  const ratioRow = (label: string, without: number | null, withLoad: number | null, unit: string, figure: ApiRatio): string[] => {
    const target = API_TARGETS.find((t) => t.figure === figure);
    const ratio = api[figure];
    return [
      label,
      value(without, unit),
      value(withLoad, unit),
      ratio === null ? '-' : formatNumber(ratio),
      target ? `${target.kind === 'min' ? '≥' : '≤'} ${target.value}` : '',
      target ? apiVerdict(target, api) : '',
    ];
  };
  const plainRow = (label: string, without: number | null, withLoad: number | null, unit = ' ms'): string[] => {
    const ratio = without !== null && withLoad !== null && without > 0 ? withLoad / without : null;
    return [label, value(without, unit), value(withLoad, unit), ratio === null ? '-' : formatNumber(ratio), '', ''];
  };
  const rows = [
    ratioRow('placements', result.placementsPerSec, api.placementsPerSecLoaded, '/s', 'placementRatio'),
    ratioRow('dispatch P50', result.dispatchP50Ms, api.dispatchP50MsLoaded, ' ms', 'dispatchP50Ratio'),
    ratioRow('dispatch P99', result.dispatchP99Ms, api.dispatchP99MsLoaded, ' ms', 'dispatchP99Ratio'),
    // CPU-seconds, not wall time: what the API costs the master itself, whatever else the host runs.
    plainRow('master CPU during dispatch', result.details.dispatchCpu?.master ?? null, d?.dispatchLoaded?.dispatchCpu?.master ?? null, ' s'),
    plainRow('GET /v1/jobs?limit=100 P99', api.jobsPageP99Ms, api.jobsPageP99MsLoaded),
    plainRow('GET /v1/jobs?state=Failed&limit=100 P99', api.jobsFilteredP99Ms, api.jobsFilteredP99MsLoaded),
    plainRow('etcd range of the jobs, limit 100 P99 (reference)', api.etcdRangeP99Ms, api.etcdRangeP99MsLoaded),
  ];
  const out = [
    `API: ${api.clients} dashboard clients and ${api.logFollowers} log follower${api.logFollowers === 1 ? '' : 's'} (with) against none (without), same run`,
    '',
    renderTable(['figure', 'without', 'with', 'with/without', 'target', 'verdict'], rows),
    '',
  ];
  const notes: string[] = [];
  if (d?.jobsAtProbe !== undefined) notes.push(`GET /v1/jobs probed with ${formatNumber(d.jobsAtProbe)} jobs in etcd; page P99 / etcd range P99: ${api.jobsPageEtcdRatio === null ? '-' : formatNumber(api.jobsPageEtcdRatio)}`);
  if (d?.logStreamMs) {
    const lines = d.sessions.reduce((a, s) => ({ missing: a.missing + s.logLinesMissing, repeated: a.repeated + s.logLinesRepeated }), { missing: 0, repeated: 0 });
    notes.push(
      `log stream, worker flush to client: P50 ${formatNumber(d.logStreamMs.p50)} ms, P99 ${formatNumber(d.logStreamMs.p99)} ms over ${d.logStreamMs.count} lines (${lines.missing} missing, ${lines.repeated} repeated)` +
        (d.logPutMs ? `; the chunk's put alone P50 ${formatNumber(d.logPutMs.p50)} ms` : ''),
    );
  }
  for (const session of d?.sessions ?? []) {
    const answers = Object.values(session.answers).reduce((a, b) => a + b, 0);
    notes.push(
      `clients during ${session.name} (${formatNumber(session.seconds)} s): ${formatNumber(answers)} answers, ${formatNumber(session.logEvents)} log events, ${session.errors} errors, load process ${formatNumber(session.cpuSeconds)} CPU-s` +
        (session.firstError ? `; first error: ${session.firstError}` : ''),
    );
  }
  const cpu = (label: string, c: CpuSplit | undefined): void => {
    if (c) notes.push(`CPU during ${label} (${formatNumber(c.wallSeconds)} s wall): ${formatCpu(c)}`);
  };
  cpu('placement with the clients', d?.placementLoaded?.placementCpu);
  cpu('dispatch with the clients', d?.dispatchLoaded?.dispatchCpu);
  out.push(...notes.map((n) => `  ${n}`));
  return out.join('\n');
}

function formatCpu(cpu: CpuSplit): string {
  const part = (name: string, s: number | undefined) => (s === undefined ? `${name} ?` : `${name} ${formatNumber(s)} s`);
  const parts = [part('master', cpu.master), part('etcd', cpu.etcd), part('bench', cpu.bench)];
  if (cpu.host !== undefined && cpu.hostCapacity !== undefined) parts.push(`whole host ${formatNumber(cpu.host)} of ${formatNumber(cpu.hostCapacity)} s`);
  return parts.join(', ');
}
