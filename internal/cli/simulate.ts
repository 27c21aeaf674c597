import { readFile } from 'node:fs/promises';
import { buildQueue, invalidInput, parseInteger, validateQueueTree, type Queue } from '../../pkg/model/index.js';
import { createPolicy, DEFAULT_POLICY, parseSampleNodes } from '../scheduler/index.js';
import type { ComparisonReport } from '../simulate/compare.js';
import { isReferencePolicy } from '../simulate/reference-names.js';
import type { SimulationReport } from '../simulate/report.js';
import { compareOnThreads, defaultThreads, simulateOnThreads } from '../simulate/seed-threads.js';
import { checkSimulationPolicy } from '../simulate/simulation-policy.js';
import { simulateTimeline, type TimelineReport } from '../simulate/timeline.js';
import { parseTraceJobs, parseTraceNodes, type TraceJob, type TraceNode } from '../simulate/trace.js';
import { DEFAULT_SEED } from './flag-defaults.js';
import { renderTable } from './format.js';

export interface SimulateFlags {
  nodes?: string;
  jobs?: string;
  policy?: string;
  seed?: string;
  seeds?: string;
  tune?: string;
  /** Replay in time (creation_time, deletion_time) with queues, instead of the FGD protocol. */
  time?: boolean;
  /** The jobs column naming each job's queue (e.g. qos). */
  queueColumn?: string;
  /** `NAME=GPUS[:WEIGHT]`, repeatable: a queue with a GPU quota. */
  queue?: string[];
  /** Arrivals this many times faster in --time mode. */
  compress?: string;
  /** A policy to measure --policy against, seed by seed on the same arrivals. */
  compare?: string;
  /** Also an upper bound on any non-migrating policy's allocation, and each policy's gap to it. */
  bound?: boolean;
  /** Worker threads the seeds run on (default: one per seed, at most one per core; 1: this thread alone). */
  threads?: string;
  /** Feasible nodes scored per placement, N or all: the master's --sample-nodes. */
  sampleNodes?: string;
}

const MAX_SEEDS = 1000;
const MAX_THREADS = 256;

/** A trace file a flag names; a missing flag or an unreadable file is an error naming the flag. */
export async function readTrace(path: string | undefined, flag: string): Promise<string> {
  if (!path) throw invalidInput(flag, `missing: give ${flag} FILE.csv`);
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw invalidInput(flag, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function parseTune(text: string | undefined): number {
  if (text === undefined) return 1.3;
  const tune = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || tune < 1 || tune > 10) throw invalidInput('tune', `"${text}" must be a number from 1 to 10 (1.3: arrivals stop at 130% of the cluster's GPU)`);
  return tune;
}

/** `team=8:2` → a queue with an 8-GPU quota and weight 2. */
export function parseSimulatedQueues(specs: readonly string[] | undefined): Queue[] {
  const queues = (specs ?? []).map((spec) => {
    const match = /^([^=]+)=([^:]+)(?::(.+))?$/.exec(spec.trim());
    if (!match) throw invalidInput('queue', `"${spec}" is not NAME=GPUS[:WEIGHT] (e.g. LS=3000:2)`);
    return buildQueue(match[1], { quotaGpu: match[2], ...(match[3] ? { weight: match[3] } : {}) }, undefined, 0);
  });
  validateQueueTree(queues);
  return queues;
}

function parseCompress(text: string | undefined): number {
  if (text === undefined) return 1;
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || value < 1) throw invalidInput('compress', `"${text}" must be a number of at least 1`);
  return value;
}

/** Checks the flags that only time mode takes, so a protocol run never ignores them silently. */
function timeFlags(flags: SimulateFlags): { queues: Queue[]; compress: number } | undefined {
  if (!flags.time) {
    for (const [given, name] of [[flags.queueColumn, '--queue-column'], [flags.queue, '--queue'], [flags.compress, '--compress']] as const) {
      if (given !== undefined) throw invalidInput(name.slice(2), `${name} needs --time`);
    }
    return undefined;
  }
  if (flags.seeds !== undefined || flags.tune !== undefined) throw invalidInput('time', '--seeds and --tune belong to the protocol run, not --time');
  if (flags.compare !== undefined) throw invalidInput('time', '--compare belongs to the protocol run, not --time');
  if (flags.threads !== undefined) throw invalidInput('time', '--threads belongs to the protocol run, not --time');
  if (flags.policy !== undefined && isReferencePolicy(flags.policy)) throw invalidInput('policy', `"${flags.policy}" is a reference policy: it runs in the protocol run, not --time`);
  return { queues: parseSimulatedQueues(flags.queue), compress: parseCompress(flags.compress) };
}

/** --sample-nodes for Titan's policies; a reference policy scores every node by definition, so it refuses one. */
function sampleOf(flags: SimulateFlags, policy: string): { sampleSize?: number } {
  if (flags.sampleNodes === undefined) return {};
  if (isReferencePolicy(policy)) throw invalidInput('sample-nodes', `"${policy}" is a reference policy: it scores every feasible node`);
  return { sampleSize: parseSampleNodes(flags.sampleNodes) };
}

function requireTimes(jobs: readonly TraceJob[], file: string | undefined): void {
  if (jobs.some((j) => j.createdAt === undefined || j.deletedAt === undefined)) {
    throw invalidInput('--jobs', `${file}: --time needs creation_time and deletion_time on every row`);
  }
}

/** `titan simulate --time`: the trace replayed in time, with queues. */
export async function simulateInTime(flags: SimulateFlags): Promise<TimelineReport> {
  const mode = timeFlags(flags) as { queues: Queue[]; compress: number };
  const policy = createPolicy(flags.policy ?? DEFAULT_POLICY).name;
  const nodes = parseTraceNodes(await readTrace(flags.nodes, '--nodes'), flags.nodes);
  const jobs = parseTraceJobs(await readTrace(flags.jobs, '--jobs'), flags.jobs, flags.queueColumn ? { queueColumn: flags.queueColumn } : {});
  requireTimes(jobs, flags.jobs);
  return simulateTimeline(nodes, jobs, { policy, queues: mode.queues, compress: mode.compress, ...sampleOf(flags, policy) });
}

const seconds = (s: number): string => (s < 120 ? `${Math.round(s)}s` : s < 7200 ? `${(s / 60).toFixed(1)}m` : `${(s / 3600).toFixed(1)}h`);

export function renderTimeline(report: TimelineReport): string {
  const head =
    `policy ${report.policy}: ${report.jobs} jobs, ${report.started} started, ${report.neverStarted} never started; ` +
    `wait P50 ${seconds(report.waitP50Seconds)}, P99 ${seconds(report.waitP99Seconds)}; ${report.seconds.toFixed(1)} s\n`;
  const table = renderTable(
    ['QUEUE', 'QUOTA GPU', 'JOBS', 'MEAN GPU SHARE %', 'WAIT P50', 'WAIT P99', 'NEVER STARTED'],
    report.queues.map((q) => [q.name, String(q.quotaGpu), String(q.jobs), q.meanGpuSharePct.toFixed(2), seconds(q.waitP50Seconds), seconds(q.waitP99Seconds), String(q.neverStarted)]),
  );
  const names = report.queues.map((q) => q.name);
  const series = renderTable(
    ['TIME', ...names.map((n) => `${n} GPU %`)],
    report.series.map((p) => [seconds(p.at), ...names.map((n) => (p.gpuSharePct[n] ?? 0).toFixed(2))]),
  );
  return `${head}${table}\nGPU share over time:\n${series}`;
}

/** The protocol run's flags and traces, checked before any work. */
export async function protocolInputs(
  flags: SimulateFlags,
): Promise<{ policy: string; seed: number; seeds: number; tune: number; sampleSize?: number; nodes: TraceNode[]; jobs: TraceJob[] }> {
  const policy = checkSimulationPolicy(flags.policy ?? DEFAULT_POLICY);
  timeFlags(flags);
  const sample = sampleOf(flags, policy);
  const seed = flags.seed === undefined ? DEFAULT_SEED : parseInteger(flags.seed, 'seed');
  if (seed < 0) throw invalidInput('seed', 'must be zero or more');
  const seeds = flags.seeds === undefined ? 1 : parseInteger(flags.seeds, 'seeds');
  if (seeds < 1 || seeds > MAX_SEEDS) throw invalidInput('seeds', `must be from 1 to ${MAX_SEEDS}`);
  const tune = parseTune(flags.tune);
  const nodes = parseTraceNodes(await readTrace(flags.nodes, '--nodes'), flags.nodes);
  const jobs = parseTraceJobs(await readTrace(flags.jobs, '--jobs'), flags.jobs);
  if (!nodes.some((n) => n.gpus > 0)) throw invalidInput('--nodes', `${flags.nodes} has no GPU node: nothing to measure`);
  return { policy, seed, seeds, tune, ...sample, nodes, jobs };
}

/** --threads for `runs` simulated runs (default: defaultThreads). */
export function threadsOf(flags: SimulateFlags, runs: number): number {
  if (flags.threads === undefined) return defaultThreads(runs);
  const threads = parseInteger(flags.threads, 'threads');
  if (threads < 1 || threads > MAX_THREADS) throw invalidInput('threads', `must be from 1 to ${MAX_THREADS}`);
  return threads;
}

/** Validates the flags, reads both traces and runs the simulation (seeds on worker threads); throws InvalidInput before any work on bad input. */
export async function simulate(flags: SimulateFlags): Promise<SimulationReport> {
  const inputs = await protocolInputs(flags);
  return simulateOnThreads(inputs, threadsOf(flags, inputs.seeds));
}

/** `titan simulate --compare REF`: --policy minus REF, seed by seed on the same arrivals. */
export async function compareSimulation(flags: SimulateFlags): Promise<ComparisonReport> {
  const reference = checkSimulationPolicy(flags.compare ?? '', 'compare');
  const inputs = await protocolInputs(flags);
  return compareOnThreads({ ...inputs, reference }, threadsOf(flags, 2 * inputs.seeds));
}

const pct = (value: number): string => value.toFixed(2);

export function renderSimulation(report: SimulationReport): string {
  const rows = report.runs.map((r) => [
    String(r.seed),
    pct(r.gpuAllocPctAt100),
    pct(r.gpuAllocPctAt130),
    pct(r.fragmentedGpuPct),
    String(r.placed),
    String(r.failed),
    r.seconds.toFixed(1),
  ]);
  const m = report.median;
  if (report.runs.length > 1) {
    rows.push(['median', pct(m.gpuAllocPctAt100), pct(m.gpuAllocPctAt130), pct(m.fragmentedGpuPct), String(m.placed), String(m.failed), m.seconds.toFixed(1)]);
  }
  const head =
    `policy ${report.policy}: ${report.nodes} nodes, ${report.gpus} GPUs, ${report.traceJobs} trace jobs, ` +
    `arrivals to ${Math.round(report.tune * 100)}% of GPU; ${report.seconds.toFixed(1)} s\n`;
  return (
    head +
    renderTable(
      ['SEED', `GPU ALLOC % AT 100%`, `AT ${Math.round(report.tune * 100)}%`, 'FRAGMENTED GPU %', 'PLACED', 'FAILED', 'SECONDS'],
      rows,
    )
  );
}

const signed = (value: number): string => `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;

export function renderComparison(report: ComparisonReport): string {
  const at = Math.round(report.tune * 100);
  const rows = report.runs.map((r) => [
    String(r.seed),
    pct(r.policy.gpuAllocPctAt100),
    pct(r.reference.gpuAllocPctAt100),
    signed(r.diffAt100),
    pct(r.policy.gpuAllocPctAt130),
    pct(r.reference.gpuAllocPctAt130),
    signed(r.diffAt130),
  ]);
  rows.push(['median', pct(report.at100.policy), pct(report.at100.reference), signed(report.at100.diff), pct(report.at130.policy), pct(report.at130.reference), signed(report.at130.diff)]);
  const interval = (i: [number, number]): string => `[${signed(i[0])}, ${signed(i[1])}]`;
  rows.push([`${Math.round(report.confidence * 100)}% interval`, '', '', interval(report.at100.interval), '', '', interval(report.at130.interval)]);
  const head =
    `${report.policy} minus ${report.reference}, GPU allocated % (same arrivals per seed): ${report.nodes} nodes, ${report.gpus} GPUs, ` +
    `${report.traceJobs} trace jobs, arrivals to ${at}% of GPU; ${report.seconds.toFixed(1)} s\n`;
  const foot = `medians over ${report.runs.length} seed${report.runs.length === 1 ? '' : 's'}; interval: percentile bootstrap of the median difference over seeds, ${report.resamples} resamples\n`;
  const p = report.policy.toUpperCase();
  const r = report.reference.toUpperCase();
  return head + renderTable(['SEED', `${p} AT 100%`, `${r} AT 100%`, 'DIFF', `${p} AT ${at}%`, `${r} AT ${at}%`, 'DIFF'], rows) + foot;
}
