import { writeFile } from 'node:fs/promises';
import { invalidInput, parseInteger } from '../../pkg/model/index.js';
import { formatTraceNodes, synthesizeNodes } from '../simulate/node-synth.js';
import { parseTraceNodes } from '../simulate/trace.js';
import { DEFAULT_SEED } from './flag-defaults.js';
import { readTrace } from './simulate.js';

export interface NodeSynthFlags {
  base?: string;
  count?: string;
  seed?: string;
  out?: string;
}

/** What `titan trace synth-nodes` made: the node list as CSV and its size. */
export interface NodeSynthReport {
  baseNodes: number;
  nodes: number;
  gpus: number;
  seed: number;
  out?: string;
  csv: string;
}

/** Validates the flags, reads the base list and synthesizes the nodes; with --out, writes them there. Bad input throws InvalidInput before anything is written. */
export async function nodeSynth(flags: NodeSynthFlags, json: boolean): Promise<NodeSynthReport> {
  const seed = flags.seed === undefined ? DEFAULT_SEED : parseInteger(flags.seed, '--seed');
  if (flags.count === undefined) throw invalidInput('--count', 'missing: give --count N');
  const count = parseInteger(flags.count, '--count');
  // JSON output is the summary; the node list then needs a file of its own.
  if (json && flags.out === undefined) throw invalidInput('--out', '--output json prints a summary: give --out FILE.csv for the node list');
  const base = parseTraceNodes(await readTrace(flags.base, '--base'), flags.base);
  const nodes = synthesizeNodes(base, count, seed);
  const csv = formatTraceNodes(nodes);
  if (flags.out !== undefined) {
    try {
      await writeFile(flags.out, csv);
    } catch (err) {
      throw invalidInput('--out', `cannot write ${flags.out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const gpus = nodes.reduce((sum, n) => sum + n.gpus, 0);
  return { baseNodes: base.length, nodes: nodes.length, gpus, seed, ...(flags.out !== undefined ? { out: flags.out } : {}), csv };
}

export function renderNodeSynthSummary(report: NodeSynthReport): string {
  return `${report.nodes} nodes (${report.gpus} GPUs) from ${report.baseNodes}, seed ${report.seed}, written to ${report.out ?? 'stdout'}\n`;
}
