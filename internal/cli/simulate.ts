import { readFile } from 'node:fs/promises';
import { invalidInput, parseInteger } from '../../pkg/model/index.js';
import { createPolicy, DEFAULT_POLICY } from '../scheduler/index.js';
import { runSimulation, type SimulationReport } from '../simulate/report.js';
import { parseTraceJobs, parseTraceNodes } from '../simulate/trace.js';
import { renderTable } from './format.js';

export interface SimulateFlags {
  nodes?: string;
  jobs?: string;
  policy?: string;
  seed?: string;
  seeds?: string;
  tune?: string;
}

/** The seed the FGD artefact's runs start from, so a default run compares. */
export const DEFAULT_SEED = 42;
const MAX_SEEDS = 1000;

async function readTrace(path: string | undefined, flag: string): Promise<string> {
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

/** Validates the flags, reads both traces and runs the simulation; throws InvalidInput before any work on bad input. */
export async function simulate(flags: SimulateFlags): Promise<SimulationReport> {
  const policy = createPolicy(flags.policy ?? DEFAULT_POLICY).name;
  const seed = flags.seed === undefined ? DEFAULT_SEED : parseInteger(flags.seed, 'seed');
  if (seed < 0) throw invalidInput('seed', 'must be zero or more');
  const seeds = flags.seeds === undefined ? 1 : parseInteger(flags.seeds, 'seeds');
  if (seeds < 1 || seeds > MAX_SEEDS) throw invalidInput('seeds', `must be from 1 to ${MAX_SEEDS}`);
  const tune = parseTune(flags.tune);
  const nodes = parseTraceNodes(await readTrace(flags.nodes, '--nodes'), flags.nodes);
  const jobs = parseTraceJobs(await readTrace(flags.jobs, '--jobs'), flags.jobs);
  if (!nodes.some((n) => n.gpus > 0)) throw invalidInput('--nodes', `${flags.nodes} has no GPU node: nothing to measure`);
  return runSimulation({ nodes, jobs, policy, seed, seeds, tune });
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
