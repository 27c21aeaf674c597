/**
 * Runs `titan simulate` for every policy on the openb traces and prints a
 * table of medians beside the published FGD-artefact figures:
 * `npm run bench:simulate -- [--dir ../shared/traces/openb] [--seeds 10] [--policies binpack,fgd,fgd-paper] [--output json]`
 * (every policy by default: Titan's, then the references fgd-paper and bestfit).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isReferencePolicy } from '../../internal/simulate/reference-names.js';
import { runSimulation, type SimulationReport } from '../../internal/simulate/report.js';
import { simulationPolicyNames } from '../../internal/simulate/simulation-policy.js';
import { parseTraceJobs, parseTraceNodes } from '../../internal/simulate/trace.js';

const TRACES = ['default', 'gpushare40', 'multigpu20', 'cpu050'] as const;

/** GPU allocated % at 100% / 130% arrived, medians of 10 seeds, from the FGD artefact. */
const PUBLISHED: Record<(typeof TRACES)[number], { bestFit: [number, number]; fgd: [number, number] }> = {
  default: { bestFit: [92.91, 93.11], fgd: [95.23, 95.4] },
  gpushare40: { bestFit: [91.47, 91.73], fgd: [93.95, 94.14] },
  multigpu20: { bestFit: [93.73, 93.9], fgd: [95.53, 95.65] },
  cpu050: { bestFit: [93.58, 93.82], fgd: [95.0, 95.2] },
};

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const dir = flag('dir', path.resolve('../shared/traces/openb'));
const seeds = Number(flag('seeds', '10'));
const policies = flag('policies', simulationPolicyNames().join(',')).split(',');
const json = flag('output', 'table') === 'json';

const nodes = parseTraceNodes(readFileSync(path.join(dir, 'openb_node_list_gpu_node.csv'), 'utf8'), 'openb_node_list_gpu_node.csv');
const results: { trace: string; report: SimulationReport }[] = [];
for (const trace of TRACES) {
  const file = `openb_pod_list_${trace}.csv`;
  const jobs = parseTraceJobs(readFileSync(path.join(dir, file), 'utf8'), file);
  for (const policy of policies) {
    const report = runSimulation({ nodes, jobs, policy, seed: 42, seeds, tune: 1.3 });
    results.push({ trace, report });
    if (!json) process.stderr.write(`${trace} ${policy}: ${report.seconds.toFixed(1)} s\n`);
  }
}

if (json) {
  process.stdout.write(`${JSON.stringify(results.map(({ trace, report }) => ({ trace, policy: report.policy, median: report.median, seconds: report.seconds })), null, 2)}\n`);
} else {
  const pair = (a: number, b: number): string => `${a.toFixed(2)} / ${b.toFixed(2)}`;
  const lines = [
    `| trace | published BestFit | published FGD | ${policies.map((p) => (isReferencePolicy(p) ? `reference ${p}` : `titan ${p}`)).join(' | ')} |`,
    `|---|---|---|${policies.map(() => '---').join('|')}|`,
  ];
  for (const trace of TRACES) {
    const row = policies.map((p) => {
      const r = results.find((x) => x.trace === trace && x.report.policy === p)?.report;
      return r ? pair(r.median.gpuAllocPctAt100, r.median.gpuAllocPctAt130) : '';
    });
    lines.push(`| ${trace} | ${pair(...PUBLISHED[trace].bestFit)} | ${pair(...PUBLISHED[trace].fgd)} | ${row.join(' | ')} |`);
  }
  const times = results.map(({ trace, report }) => `${trace}/${report.policy} ${report.seconds.toFixed(1)} s`);
  process.stdout.write(`${lines.join('\n')}\n\nrun time of ${seeds} seeds: ${times.join(', ')}\n`);
}
