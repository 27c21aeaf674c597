import { writeFile } from 'node:fs/promises';
import { invalidInput, parseInteger } from '../../pkg/model/index.js';
import { synthesizeTrace, SYNTH_KNOBS, type SynthOptions, type SynthResult, type TraceShares } from '../simulate/trace-synth.js';
import { formatTraceTable, parseTraceNodes, parseTraceTable } from '../simulate/trace.js';
import { DEFAULT_SEED } from './flag-defaults.js';
import { renderTable } from './format.js';
import { readTrace } from './simulate.js';

export interface TraceSynthFlags {
  base?: string;
  nodes?: string;
  seed?: string;
  cpuOnly?: string;
  gpuShare?: string;
  multiGpu?: string;
  constrained?: string;
  out?: string;
}

/** What `titan trace synth` made: the trace as CSV, and the shares of base, target and result. */
export interface TraceSynthReport extends Omit<SynthResult, 'table'> {
  seed: number;
  out?: string;
  csv: string;
}

function knob(text: string | undefined, key: keyof typeof SYNTH_KNOBS): number | undefined {
  if (text === undefined) return undefined;
  const { flag, min, max } = SYNTH_KNOBS[key];
  if (!/^\d+(\.\d+)?$/.test(text.trim())) throw invalidInput(flag, `"${text}" must be a number from ${min} to ${max}`);
  return Number(text);
}

/**
 * Validates the flags, reads both files and synthesizes the trace; with
 * --out, writes it there. Bad input throws InvalidInput before anything is
 * written.
 */
export async function traceSynth(flags: TraceSynthFlags, json: boolean): Promise<TraceSynthReport> {
  const seed = flags.seed === undefined ? DEFAULT_SEED : parseInteger(flags.seed, '--seed');
  const options: SynthOptions = { seed };
  const cpuOnly = knob(flags.cpuOnly, 'cpuOnly');
  const gpuShare = knob(flags.gpuShare, 'gpuShare');
  const multiGpu = knob(flags.multiGpu, 'multiGpu');
  const constrained = knob(flags.constrained, 'constrained');
  if (cpuOnly !== undefined) options.cpuOnly = cpuOnly;
  if (gpuShare !== undefined) options.gpuShare = gpuShare;
  if (multiGpu !== undefined) options.multiGpu = multiGpu;
  if (constrained !== undefined) options.constrained = constrained;
  // JSON output is the summary; the trace then needs a file of its own.
  if (json && flags.out === undefined) throw invalidInput('--out', '--output json prints a summary of the shares: give --out FILE.csv for the trace');
  const nodes = parseTraceNodes(await readTrace(flags.nodes, '--nodes'), flags.nodes);
  const base = parseTraceTable(await readTrace(flags.base, '--base'), flags.base);
  const { table, ...result } = synthesizeTrace(base, nodes, options, flags.base);
  const csv = formatTraceTable(table.header, table.rows);
  if (flags.out !== undefined) {
    try {
      await writeFile(flags.out, csv);
    } catch (err) {
      throw invalidInput('--out', `cannot write ${flags.out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return { ...result, seed, ...(flags.out !== undefined ? { out: flags.out } : {}), csv };
}

const pct = (share: number): string => (share * 100).toFixed(2);

export function renderSynthSummary(report: TraceSynthReport): string {
  const rows = (
    [
      ['cpu-only (% of tasks)', 'cpuOnly'],
      ['gpu-share (% of GPU request)', 'gpuShare'],
      ['whole-gpu (% of GPU request)', 'wholeGpu'],
      ['multi-gpu (% of GPU request)', 'multiGpu'],
      ['constrained (% of GPU tasks)', 'constrained'],
    ] as [string, keyof TraceShares][]
  ).map(([label, key]) => [label, pct(report.base[key]), pct(report.target[key]), pct(report.achieved[key])]);
  const dropped = report.dropped > 0 ? `; ${report.dropped} base tasks fit no node and were left out` : '';
  return `${report.tasks} tasks, seed ${report.seed}, written to ${report.out ?? 'stdout'}${dropped}\n` + renderTable(['SHARE', 'BASE', 'TARGET', 'RESULT'], rows);
}
