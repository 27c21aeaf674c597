/**
 * Runs `titan simulate` for every policy on the openb traces and prints a
 * table of medians beside the published FGD-artefact figures, then the
 * simulator's speed: pods placed per second of CPU (one core: the seeds run
 * one after another in this thread).
 * `npm run bench:simulate -- [--dir ../shared/traces/openb] [--seeds 10] [--policies binpack,fgd,fgd-paper] [--traces default,cpu050] [--baseline OLD/dist] [--output json]`
 * (every policy and trace by default: Titan's, then the references fgd-paper and bestfit).
 * `--baseline` names the dist directory of another build (e.g. a git worktree
 * of an older commit, built): each run is repeated on it in the same process,
 * alternating, for the speedup measured in the same run and a check that
 * every per-seed figure is the same.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isReferencePolicy } from '../../internal/simulate/reference-names.js';
import { runSimulation, type SimulationReport, type SimulationRequest } from '../../internal/simulate/report.js';
import { simulationPolicyNames } from '../../internal/simulate/simulation-policy.js';
import { parseTraceJobs, parseTraceNodes } from '../../internal/simulate/trace.js';

const TRACES = ['default', 'gpushare40', 'multigpu20', 'cpu050'] as const;
type Trace = (typeof TRACES)[number];

/** GPU allocated % at 100% / 130% arrived, medians of 10 seeds, from the FGD artefact. */
const PUBLISHED: Record<Trace, { bestFit: [number, number]; fgd: [number, number] }> = {
  default: { bestFit: [92.91, 93.11], fgd: [95.23, 95.4] },
  gpushare40: { bestFit: [91.47, 91.73], fgd: [93.95, 94.14] },
  multigpu20: { bestFit: [93.73, 93.9], fgd: [95.53, 95.65] },
  cpu050: { bestFit: [93.58, 93.82], fgd: [95.0, 95.2] },
};

const HELP = `Usage: npm run bench:simulate -- [options]

Options:
  --dir <dir>          the openb traces (default ../shared/traces/openb)
  --seeds <n>          seeds per run, from 42 (default 10)
  --policies <list>    policies, comma-separated (default: all, references included)
  --traces <list>      openb task lists, comma-separated (default: ${'default,gpushare40,multigpu20,cpu050'})
  --baseline <dist>    another build's dist directory: each run repeated on it, for the speedup
  --output <format>    table or json (default table)
  --help               this help
`;
if (process.argv.includes('--help')) {
  process.stdout.write(HELP);
  process.exit(0);
}

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const dir = flag('dir', path.resolve('../shared/traces/openb'));
const seeds = Number(flag('seeds', '10'));
const policies = flag('policies', simulationPolicyNames().join(',')).split(',');
const traces = flag('traces', TRACES.join(',')).split(',') as Trace[];
const baselineDir = flag('baseline', '');
const json = flag('output', 'table') === 'json';
for (const t of traces) if (!TRACES.includes(t)) throw new Error(`--traces: unknown trace "${t}" (known: ${TRACES.join(', ')})`);

/** A build's entry points: this one's, or the baseline's (loaded from its dist). */
interface Build {
  runSimulation: (request: SimulationRequest) => SimulationReport;
  parseTraceNodes: typeof parseTraceNodes;
  parseTraceJobs: typeof parseTraceJobs;
}

async function loadBuild(distDir: string): Promise<Build> {
  const at = (file: string): string => pathToFileURL(path.resolve(distDir, file)).href;
  const report = (await import(at('internal/simulate/report.js'))) as Pick<Build, 'runSimulation'>;
  const trace = (await import(at('internal/simulate/trace.js'))) as Pick<Build, 'parseTraceNodes' | 'parseTraceJobs'>;
  return { runSimulation: report.runSimulation, parseTraceNodes: trace.parseTraceNodes, parseTraceJobs: trace.parseTraceJobs };
}

/** One simulation, and the CPU this thread spent on it. */
function timed(build: Build, request: SimulationRequest): { report: SimulationReport; cpuSeconds: number } {
  const before = process.cpuUsage();
  const report = build.runSimulation(request);
  const used = process.cpuUsage(before);
  return { report, cpuSeconds: (used.user + used.system) / 1e6 };
}

const placedPods = (report: SimulationReport): number => report.runs.reduce((sum, r) => sum + r.placed, 0);
/** Every per-seed figure but the seconds, to compare two builds' runs. */
const figures = (report: SimulationReport): string => JSON.stringify(report.runs.map(({ seconds: _seconds, ...figure }) => figure));

interface Result {
  trace: Trace;
  report: SimulationReport;
  cpuSeconds: number;
  podsPerCoreSecond: number;
  baseline?: { cpuSeconds: number; podsPerCoreSecond: number; speedup: number; sameFigures: boolean };
}

const current: Build = { runSimulation, parseTraceNodes, parseTraceJobs };
const baseline = baselineDir === '' ? undefined : await loadBuild(baselineDir);
const nodeFile = 'openb_node_list_gpu_node.csv';
const nodeText = readFileSync(path.join(dir, nodeFile), 'utf8');
const results: Result[] = [];
let turn = 0;
for (const trace of traces) {
  const file = `openb_pod_list_${trace}.csv`;
  const jobText = readFileSync(path.join(dir, file), 'utf8');
  for (const policy of policies) {
    const request = (build: Build): SimulationRequest => ({
      nodes: build.parseTraceNodes(nodeText, nodeFile),
      jobs: build.parseTraceJobs(jobText, file),
      policy,
      seed: 42,
      seeds,
      tune: 1.3,
    });
    // Alternate which build goes first, so a change in the machine's load falls on both alike.
    const oldFirst = baseline !== undefined && turn++ % 2 === 1 ? timed(baseline, request(baseline)) : undefined;
    const now = timed(current, request(current));
    const before = oldFirst ?? (baseline ? timed(baseline, request(baseline)) : undefined);
    const pods = placedPods(now.report);
    const result: Result = { trace, report: now.report, cpuSeconds: now.cpuSeconds, podsPerCoreSecond: pods / now.cpuSeconds };
    if (before) {
      result.baseline = {
        cpuSeconds: before.cpuSeconds,
        podsPerCoreSecond: placedPods(before.report) / before.cpuSeconds,
        speedup: before.cpuSeconds / now.cpuSeconds,
        sameFigures: figures(before.report) === figures(now.report),
      };
    }
    results.push(result);
    if (!json) process.stderr.write(`${trace} ${policy}: ${now.cpuSeconds.toFixed(1)} s CPU${before ? `, baseline ${before.cpuSeconds.toFixed(1)} s` : ''}\n`);
  }
}

if (json) {
  const rows = results.map(({ trace, report, cpuSeconds, podsPerCoreSecond, baseline: b }) => ({
    trace,
    policy: report.policy,
    median: report.median,
    seconds: report.seconds,
    cpuSeconds,
    podsPerCoreSecond,
    ...(b ? { baseline: b } : {}),
  }));
  process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
} else {
  const pair = (a: number, b: number): string => `${a.toFixed(2)} / ${b.toFixed(2)}`;
  const lines = [
    `| trace | published BestFit | published FGD | ${policies.map((p) => (isReferencePolicy(p) ? `reference ${p}` : `titan ${p}`)).join(' | ')} |`,
    `|---|---|---|${policies.map(() => '---').join('|')}|`,
  ];
  for (const trace of traces) {
    const row = policies.map((p) => {
      const r = results.find((x) => x.trace === trace && x.report.policy === p)?.report;
      return r ? pair(r.median.gpuAllocPctAt100, r.median.gpuAllocPctAt130) : '';
    });
    lines.push(`| ${trace} | ${pair(...PUBLISHED[trace].bestFit)} | ${pair(...PUBLISHED[trace].fgd)} | ${row.join(' | ')} |`);
  }
  const speed = [
    '',
    `Pods placed per second per core (${seeds} seeds one after another in one thread; CPU time of this thread)${baseline ? `, against ${baselineDir} in the same run` : ''}:`,
    '',
    `| trace | policy | pods placed | CPU s | pods / s / core |${baseline ? ' baseline CPU s | baseline pods / s / core | speedup | same figures |' : ''}`,
    `|---|---|---|---|---|${baseline ? '---|---|---|---|' : ''}`,
    ...results.map((r) => {
      const b = r.baseline;
      const base = b ? ` ${b.cpuSeconds.toFixed(1)} | ${Math.round(b.podsPerCoreSecond)} | ${b.speedup.toFixed(1)}× | ${b.sameFigures ? 'yes' : 'NO'} |` : '';
      return `| ${r.trace} | ${r.report.policy} | ${placedPods(r.report)} | ${r.cpuSeconds.toFixed(1)} | ${Math.round(r.podsPerCoreSecond)} |${base}`;
    }),
  ];
  process.stdout.write(`${lines.join('\n')}\n${speed.join('\n')}\n`);
}
