import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../cmd/titan/program.js';

// Every flag the docs name is one the code has. The titan CLI's flags come
// from its commander tree; those of the daemons and of the npm scripts from
// commander's own --help of the built programs (dist: build first).

const root = path.resolve(import.meta.dirname, '../..');
const DOCS = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** A command as commander knows it: its flags (long and short) and its subcommands. */
interface Cli {
  path: string;
  flags: Set<string>;
  subcommands: Map<string, Cli>;
  parent?: Cli;
}

function cliOf(command: Command, parent?: Cli): Cli {
  const cli: Cli = {
    path: parent ? `${parent.path} ${command.name()}` : command.name(),
    flags: new Set(['--help', '-h']),
    subcommands: new Map(),
    ...(parent ? { parent } : {}),
  };
  for (const option of command.options) {
    if (option.long) cli.flags.add(option.long);
    if (option.short) cli.flags.add(option.short);
  }
  for (const sub of command.commands) cli.subcommands.set(sub.name(), cliOf(sub, cli));
  return cli;
}

/** The flags a built program lists in the option column of its --help. */
function cliOfHelp(name: string, script: string): Cli {
  const res = spawnSync(process.execPath, [path.join(root, 'dist', script), '--help'], { encoding: 'utf8', timeout: 60_000 });
  if (res.status !== 0) throw new Error(`${script} --help exited ${res.status ?? res.signal}: ${res.stderr}`);
  const flags = new Set<string>();
  for (const line of res.stdout.split('\n')) {
    const m = /^ {2}(?:(-\w), )?(--[\w-]+)/.exec(line);
    if (m?.[1]) flags.add(m[1]);
    if (m?.[2]) flags.add(m[2]);
  }
  if (!flags.has('--help')) throw new Error(`no options found in the help of ${script}:\n${res.stdout}`);
  return { path: name, flags, subcommands: new Map() };
}

const titan = cliOf(buildProgram({ out: () => undefined, err: () => undefined, errIsTTY: false, env: {} }, () => undefined));
const master = cliOfHelp('titan-master', 'cmd/master/main.js');
const worker = cliOfHelp('titan-worker', 'cmd/worker/main.js');
const SCRIPTS: Record<string, Cli> = {
  bench: cliOfHelp('npm run bench', 'scripts/bench/main.js'),
  'bench:docker': cliOfHelp('npm run bench:docker', 'scripts/bench-docker/main.js'),
  'bench:cli': cliOfHelp('npm run bench:cli', 'scripts/bench-cli/main.js'),
  'bench:simulate': cliOfHelp('npm run bench:simulate', 'scripts/bench-simulate/main.js'),
  'bench:grid': cliOfHelp('npm run bench:grid', 'scripts/bench-grid/main.js'),
  'bench:e2e': cliOfHelp('npm run bench:e2e', 'scripts/bench-e2e/main.js'),
  chaos: cliOfHelp('npm run chaos', 'scripts/chaos/main.js'),
};
const PROGRAMS: Record<string, Cli> = { titan, 'titan-master': master, 'titan-worker': worker };

/**
 * Flags of other tools the docs name (etcd, etcdctl, Docker, node, setpriv):
 * not ours to check. A flag of ours that is renamed or removed must not be
 * added here.
 */
const FOREIGN = new Set([
  // etcd
  '--client-cert-auth', '--cert-file', '--key-file', '--trusted-ca-file', '--auth-token', '--auth-token-ttl',
  '--quota-backend-bytes', '--auto-compaction-', '--version',
  // etcdctl
  '--print-value-only', '--keys-only',
  // docker, docker compose, dockerd
  '--build', '--target', '--build-arg', '--bridge',
  // node
  '--cpu-prof', '--require', '--trace-gc-nvp',
  // setpriv
  '--pdeathsig',
]);

function allFlags(cli: Cli): string[] {
  return [...cli.flags, ...[...cli.subcommands.values()].flatMap(allFlags)];
}
const KNOWN = new Set([...[titan, master, worker, ...Object.values(SCRIPTS)].flatMap(allFlags), ...FOREIGN]);

/** The flag a command accepts: its own or one of its ancestors' (commander takes program options anywhere). */
function accepts(cli: Cli, flag: string): boolean {
  for (let c: Cli | undefined = cli; c; c = c.parent) if (c.flags.has(flag)) return true;
  return false;
}

/** Where a program is started in a line of code: `titan ...`, `npx titan-worker ...`, `node dist/cmd/master/main.js ...`, `npm run bench -- ...`. */
const INVOCATION =
  /(?:^|[\s($=])(?:npx\s+)?(titan-master|titan-worker|titan)(?=\s|$)|node\s+dist\/cmd\/(titan|master|worker)\/main\.js|npm run (bench:docker|bench:cli|bench:simulate|bench:grid|bench:e2e|bench|chaos)(?:\s+--)?(?=\s|$)/g;

interface Claim {
  doc: string;
  line: number;
  cli: Cli;
  flag: string;
}

/** The code of a doc: each line of a fenced block (comments cut) and each inline code span, with its line number. */
function codeOf(text: string): { code: string; line: number }[] {
  const pieces: { code: string; line: number }[] = [];
  let fenced = false;
  text.split('\n').forEach((line, i) => {
    if (line.startsWith('```')) {
      fenced = !fenced;
      return;
    }
    if (fenced) pieces.push({ code: line.replace(/\s#\s.*$/, ''), line: i + 1 });
    else for (const m of line.matchAll(/`([^`]+)`/g)) pieces.push({ code: m[1], line: i + 1 });
  });
  return pieces;
}

/** The flags given to each program started in the docs' code, and the flags named anywhere else. */
function scan(doc: string): { claims: Claim[]; bare: { flag: string; line: number }[] } {
  const text = fs.readFileSync(path.join(root, doc), 'utf8');
  const claims: Claim[] = [];
  for (const { code, line } of codeOf(text)) {
    for (const m of code.matchAll(INVOCATION)) {
      const name = m[1] ?? { titan: 'titan', master: 'titan-master', worker: 'titan-worker' }[m[2] ?? ''] ?? m[3];
      // undefined: a script whose flags commander does not parse (bench:simulate); not checked.
      const start: Cli | undefined = PROGRAMS[name] ?? SCRIPTS[name];
      const rest = code.slice((m.index ?? 0) + m[0].length).split(/[|;&)<>]/)[0];
      let cli: Cli | undefined = start;
      for (const token of rest.trim().split(/\s+/)) {
        // `--` ends the options; a word ending in a comma ends the command line in prose (`titan status, titan logs -f`).
        if (token === '--' || token.endsWith(',')) break;
        if (/^--?[a-z]/i.test(token)) {
          const flag = token.split('=')[0];
          if (cli) claims.push({ doc, line, cli, flag });
        } else if (cli?.subcommands.has(token)) {
          cli = cli.subcommands.get(token);
        }
      }
    }
  }
  const bare: { flag: string; line: number }[] = [];
  text.split('\n').forEach((lineText, i) => {
    for (const m of lineText.matchAll(/(?<![\w-])--[a-z][\w-]*/g)) bare.push({ flag: m[0], line: i + 1 });
  });
  return { claims, bare };
}

const scans = DOCS.map((doc) => ({ doc, ...scan(doc) }));

describe('flags the docs name', () => {
  it('find the programs started in the docs', () => {
    const rootOf = (cli: Cli): string => (cli.parent ? rootOf(cli.parent) : cli.path);
    const started = new Set(scans.flatMap((s) => s.claims.map((c) => rootOf(c.cli))));
    expect([...started]).toEqual(expect.arrayContaining(['titan', 'titan-master', 'titan-worker', 'npm run bench']));
  });

  it.each(DOCS)('%s: every flag given to a program is one of that command', (doc) => {
    const wrong = scans
      .find((s) => s.doc === doc)!
      .claims.filter((c) => !accepts(c.cli, c.flag))
      .map((c) => `${c.doc}:${c.line}: ${c.cli.path} has no ${c.flag}`);
    expect(wrong).toEqual([]);
  });

  it.each(DOCS)('%s: every flag named is a flag of a Titan program or script', (doc) => {
    const unknown = scans
      .find((s) => s.doc === doc)!
      .bare.filter((b) => !KNOWN.has(b.flag) && ![...FOREIGN].some((f) => f.endsWith('-') && b.flag.startsWith(f)))
      .map((b) => `${doc}:${b.line}: ${b.flag}`);
    expect(unknown).toEqual([]);
  });

  /**
   * `<!-- all flags of titan-worker -->` … `<!-- end of flags -->`: a list that names every flag of
   * the program, and only those; with what a `<!-- flags of titan-master titan-worker -->` list of
   * flags they share names.
   */
  it.each(DOCS)('%s: a list of all flags of a program names each of them', (doc) => {
    const text = fs.readFileSync(path.join(root, doc), 'utf8');
    const flagsIn = (list: string): string[] => [...list.matchAll(/(?<![\w-])--[a-z][\w-]*/g)].map((f) => f[0]);
    const shared = [...text.matchAll(/<!-- flags of ([\w -]+?) -->([\s\S]*?)<!-- end of flags -->/g)].map((m) => ({
      programs: m[1].split(' '),
      flags: flagsIn(m[2]),
    }));
    for (const m of text.matchAll(/<!-- all flags of ([\w-]+) -->([\s\S]*?)<!-- end of flags -->/g)) {
      const cli = PROGRAMS[m[1]];
      expect(cli, `${doc}: no program ${m[1]}`).toBeDefined();
      const named = new Set([...flagsIn(m[2]), ...shared.filter((l) => l.programs.includes(m[1])).flatMap((l) => l.flags)]);
      const real = [...cli.flags].filter((f) => f.startsWith('--') && f !== '--help');
      expect(real.filter((f) => !named.has(f)), `${doc}: flags of ${m[1]} the list leaves out`).toEqual([]);
      expect([...named].filter((f) => !cli.flags.has(f)), `${doc}: flags the list names that ${m[1]} does not have`).toEqual([]);
    }
  });
});
