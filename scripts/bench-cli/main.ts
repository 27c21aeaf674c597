#!/usr/bin/env node
/**
 * Cold start of the CLI: `titan --help`, `titan status ID` and `titan list`
 * against a bare `node -e 0`, each a fresh process, run round-robin so a
 * busy machine slows all alike. status and list talk to a real etcd (one
 * started here, or --endpoints) holding a few jobs. Prints the median wall
 * time of each and its ratio to node's; see docs/benchmarks.md.
 *
 *   npm run bench:cli -- [--runs 10] [--endpoints host:port] [--also path/to/other/main.js] [--output json]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { anyFreePort, findEtcdBinary, startEtcdServer, type EtcdProcess } from '../../internal/localcluster/etcd-process.js';
import { parsePositiveInteger } from '../../pkg/model/parse.js';
import { percentile } from '../bench/percentiles.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI_MAIN = path.join(DIST, 'cmd/titan/main.js');
/** Jobs in the bench's prefix: `list` prints a table of them. */
const JOBS = 20;

interface Options {
  runs: number;
  endpoints?: string;
  /** Another build of the CLI measured in the same rounds (e.g. an older commit's dist): its main.js as given, and resolved. */
  also?: { label: string; main: string };
  output: 'table' | 'json';
}

function parseOptions(argv: string[]): Options {
  const program = new Command('bench-cli')
    .option('--runs <n>', 'rounds; each runs every command once (default 10)')
    .option('--endpoints <list>', 'an existing etcd (a random prefix is used); default: start one')
    .option('--also <main.js>', "another build's cmd/titan/main.js, measured in the same rounds")
    .option('--output <format>', 'table or json (default table)')
    .parse(argv, { from: 'user' });
  const opts = program.opts<{ runs?: string; endpoints?: string; also?: string; output?: string }>();
  return {
    runs: opts.runs === undefined ? 10 : parsePositiveInteger(opts.runs, 'runs'),
    ...(opts.endpoints !== undefined ? { endpoints: opts.endpoints } : {}),
    ...(opts.also !== undefined ? { also: { label: opts.also, main: path.resolve(opts.also) } } : {}),
    output: opts.output === 'json' ? 'json' : 'table',
  };
}

interface Probe {
  name: string;
  argv: string[];
}

export interface ProbeFigures {
  name: string;
  medianMs: number;
  minMs: number;
  /** Median over node's median. */
  ratio: number;
}

function run(argv: string[], env: NodeJS.ProcessEnv): { ms: number; stdout: string } {
  const started = performance.now();
  const res = spawnSync(process.execPath, argv, { env, encoding: 'utf8', maxBuffer: 16 << 20 });
  const ms = performance.now() - started;
  if (res.status !== 0) throw new Error(`node ${argv.join(' ')} exited ${res.status ?? res.signal}: ${res.stderr.trim()}`);
  return { ms, stdout: res.stdout };
}

/** Median of each probe's times and its ratio to the first probe's (node -e 0). */
export function figuresOf(probes: readonly Probe[], times: ReadonlyMap<string, number[]>): ProbeFigures[] {
  const median = (name: string): number => percentile(times.get(name) ?? [], 50);
  const base = median(probes[0].name);
  return probes.map((p) => ({
    name: p.name,
    medianMs: Math.round(median(p.name)),
    minMs: Math.round(Math.min(...(times.get(p.name) ?? []))),
    ratio: Number((median(p.name) / base).toFixed(2)),
  }));
}

function progress(message: string): void {
  process.stderr.write(`bench-cli  ${message}\n`);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-bench-cli-'));
  let etcd: EtcdProcess | undefined;
  try {
    let endpoints = options.endpoints;
    if (endpoints === undefined) {
      const port = await anyFreePort();
      progress(`starting etcd on 127.0.0.1:${port}`);
      etcd = await startEtcdServer(findEtcdBinary(), dir, port);
      endpoints = `127.0.0.1:${port}`;
    }
    const env: NodeJS.ProcessEnv = {
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TITAN_'))),
      TITAN_ENDPOINTS: endpoints,
      TITAN_PREFIX: `/bench-cli-${randomBytes(4).toString('hex')}`,
      // No contexts file: the figures are those of flags and env alone.
      TITAN_CONFIG: path.join(dir, 'no-config.yaml'),
    };
    const submitted = JSON.parse(run([CLI_MAIN, 'submit', '-n', String(JOBS), '-t', '1', '--output', 'json'], env).stdout) as { ids: string[] };
    const id = submitted.ids[0];
    progress(`${JOBS} jobs submitted; ${options.runs} rounds`);

    const cliProbes = (main: string, label: string): Probe[] => [
      { name: `titan --help${label}`, argv: [main, '--help'] },
      { name: `titan status ID${label}`, argv: [main, 'status', id] },
      { name: `titan list${label}`, argv: [main, 'list'] },
    ];
    const probes: Probe[] = [
      { name: 'node -e 0', argv: ['-e', '0'] },
      ...cliProbes(CLI_MAIN, ''),
      ...(options.also !== undefined ? cliProbes(options.also.main, ` (${options.also.label})`) : []),
    ];
    const times = new Map<string, number[]>(probes.map((p) => [p.name, []]));
    // One untimed round: the page cache holds every file before the first timed start.
    for (const p of probes) run(p.argv, env);
    for (let round = 0; round < options.runs; round++) {
      for (const p of probes) times.get(p.name)?.push(run(p.argv, env).ms);
    }

    const figures = figuresOf(probes, times);
    const result = { node: process.version, cpus: os.cpus().length, loadavg: os.loadavg().map((l) => Number(l.toFixed(2))), runs: options.runs, figures };
    if (options.output === 'json') {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return;
    }
    const width = Math.max(...figures.map((f) => f.name.length));
    const lines = [
      `${'command'.padEnd(width)}  median ms  min ms  × node`,
      ...figures.map((f) => `${f.name.padEnd(width)}  ${String(f.medianMs).padStart(9)}  ${String(f.minMs).padStart(6)}  ${f.ratio.toFixed(2).padStart(6)}`),
      `(${options.runs} rounds, node ${process.version}, ${result.cpus} CPUs, load average ${result.loadavg.join(' ')})`,
    ];
    process.stdout.write(`${lines.join('\n')}\n${JSON.stringify(result)}\n`);
  } finally {
    await etcd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
