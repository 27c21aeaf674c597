import { invalidInput } from '../../pkg/model/index.js';
import { boundReport, type BoundReport, type PolicyRuns } from '../simulate/bound-report.js';
import { loadPackingSolver } from '../simulate/bound-solver.js';
import type { ComparisonReport } from '../simulate/compare.js';
import type { SimulationReport } from '../simulate/report.js';
import { compareOnThreads, simulateOnThreads } from '../simulate/seed-threads.js';
import { checkSimulationPolicy } from '../simulate/simulation-policy.js';
import { renderTable } from './format.js';
import { protocolInputs, renderComparison, renderSimulation, threadsOf, type SimulateFlags } from './simulate.js';

/** A protocol run (or a comparison) with the bound beside it. */
export type BoundedSimulation = (SimulationReport & { bound: BoundReport }) | (ComparisonReport & { bound: BoundReport });

/** `titan simulate --bound [--compare REF]`: the run, then the bound on each seed's arrivals and each policy's gap to it. */
export async function simulateWithBound(flags: SimulateFlags): Promise<BoundedSimulation> {
  if (flags.time) throw invalidInput('bound', '--bound belongs to the protocol run, not --time');
  const reference = flags.compare === undefined ? undefined : checkSimulationPolicy(flags.compare, 'compare');
  const inputs = await protocolInputs(flags);
  const solve = await loadPackingSolver();
  if (reference === undefined) {
    const report = await simulateOnThreads(inputs, threadsOf(flags, inputs.seeds));
    return { ...report, bound: boundReport(inputs, [{ policy: report.policy, runs: report.runs }], solve) };
  }
  const report = await compareOnThreads({ ...inputs, reference }, threadsOf(flags, 2 * inputs.seeds));
  const policies: PolicyRuns[] = [
    { policy: report.policy, runs: report.runs.map((r) => r.policy) },
    { policy: report.reference, runs: report.runs.map((r) => r.reference) },
  ];
  return { ...report, bound: boundReport(inputs, policies, solve) };
}

const pct = (value: number): string => value.toFixed(2);

/** The bound's table: per seed the bound at both points and each policy's gap to it, then the medians. */
export function renderBound(bound: BoundReport, tune: number): string {
  const at = Math.round(tune * 100);
  const policies = bound.median.gaps.map((g) => g.policy.toUpperCase());
  const headers = ['SEED', 'BOUND AT 100%', `AT ${at}%`, ...policies.flatMap((p) => [`${p} GAP AT 100%`, `AT ${at}%`])];
  const row = (label: string, b100: number, b130: number, gaps: readonly { gapAt100: number; gapAt130: number }[]): string[] => [
    label,
    pct(b100),
    pct(b130),
    ...gaps.flatMap((g) => [pct(g.gapAt100), pct(g.gapAt130)]),
  ];
  const rows = bound.runs.map((r) => row(String(r.seed), r.gpuAllocPctAt100, r.gpuAllocPctAt130, r.gaps));
  if (bound.runs.length > 1) rows.push(row('median', bound.median.gpuAllocPctAt100, bound.median.gpuAllocPctAt130, bound.median.gaps));
  const head = `upper bound on GPU allocated % for any policy that never moves a task, and each policy's gap to it (points); ${bound.seconds.toFixed(1)} s\n`;
  const foot = `bound: ${bound.method}\n`;
  return head + renderTable(headers, rows) + foot;
}

export function renderBoundedSimulation(report: BoundedSimulation): string {
  const run = 'reference' in report ? renderComparison(report) : renderSimulation(report);
  return `${run.endsWith('\n') ? run : run + '\n'}\n${renderBound(report.bound, report.tune)}`;
}
