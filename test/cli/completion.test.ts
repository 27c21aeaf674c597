import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../cmd/titan/program.js';
import { allCommands, commandTree, type CommandSpec } from '../../internal/cli/completion.js';
import { runCli } from './run-cli.js';

// The scripts come from the real binary; the program tree they must cover is
// built in-process from the same program. bash completes for real: the
// script is sourced, COMP_WORDS/COMP_CWORD set and _titan called.
const tree = commandTree(buildProgram({ out: () => undefined, err: () => undefined, errIsTTY: false, env: {} }, () => undefined));
const commands = allCommands(tree).filter((c) => c.path !== '');
const scripts: Record<string, string> = {};
let dir: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-completion-'));
  for (const shell of ['bash', 'zsh', 'fish']) {
    const res = await runCli(['completion', shell]);
    expect(res.code, res.stderr).toBe(0);
    scripts[shell] = res.stdout;
    fs.writeFileSync(path.join(dir, `titan.${shell}`), res.stdout);
  }
  fs.writeFileSync(path.join(dir, 'spec.yaml'), 'image: busybox\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const words = (c: CommandSpec): string[] => (c.path === '' ? [] : c.path.split(' '));
const parentOf = (c: CommandSpec): CommandSpec => commands.find((p) => p.subcommands.includes(c)) ?? tree;
const q = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

/** Completes each command line (the last word is the one under the cursor) in one bash run. */
function complete(lines: string[][]): string[][] {
  const driver = [
    `source ${q(path.join(dir, 'titan.bash'))}`,
    `t() { COMP_WORDS=("$@"); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _titan; printf '%s\\n' "\${COMPREPLY[@]}"; printf '\\x1e\\n'; }`,
    ...lines.map((l) => `t ${l.map(q).join(' ')}`),
  ].join('\n');
  const res = spawnSync('bash', ['--norc', '--noprofile', '-c', driver], { cwd: dir, encoding: 'utf8' });
  expect(res.status, res.stderr).toBe(0);
  expect(res.stderr).toBe('');
  const out = res.stdout.split('\x1e\n');
  expect(out).toHaveLength(lines.length + 1);
  return out.slice(0, -1).map((o) => o.split('\n').filter(Boolean).sort());
}

const has = (tool: string): boolean => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;

describe('titan completion', () => {
  it('covers every command in each script', () => {
    expect(commands.map((c) => c.path)).toEqual(expect.arrayContaining(['submit', 'queue create', 'context add', 'completion', 'help']));
    for (const c of commands) {
      expect(scripts.bash, c.path).toContain(`'${c.path}')`);
      expect(scripts.zsh, c.path).toContain(`'${c.name}:`);
      expect(scripts.fish, c.path).toContain(`-a '${c.name}'`);
    }
  });

  it('writes bash that parses, and zsh and fish that parse where those shells are installed', () => {
    const bash = spawnSync('bash', ['-n', path.join(dir, 'titan.bash')], { encoding: 'utf8' });
    expect(bash.status, bash.stderr).toBe(0);
    for (const shell of ['zsh', 'fish']) {
      if (!has(shell)) continue; // not installed here: the text checks above still ran
      const res = spawnSync(shell, ['-n', path.join(dir, `titan.${shell}`)], { encoding: 'utf8' });
      expect(res.status, `${shell}: ${res.stderr}`).toBe(0);
    }
  });

  it('bash completes every command under its parent, and every option of each command', () => {
    const byParent = complete(commands.map((c) => ['titan', ...words(parentOf(c)), '']));
    commands.forEach((c, i) => expect(byParent[i], c.path).toContain(c.name));
    const byCommand = complete(commands.map((c) => ['titan', ...words(c), '--']));
    const globals = tree.options.map((o) => o.long);
    commands.forEach((c, i) => {
      for (const long of [...c.options.map((o) => o.long), ...globals]) if (long) expect(byCommand[i], `${c.path} ${long}`).toContain(long);
    });
  });

  it('bash completes option values and skips them when finding the command', () => {
    const cases: [string[], string[]][] = [
      [['titan', '--output', ''], ['json', 'table', 'wide']],
      [['titan', 'list', '--sort', 'p'], ['priority']],
      [['titan', 'list', '--state', 'S'], ['Scheduled', 'Succeeded']],
      [['titan', 'list', '-o', 'j'], ['json']],
      [['titan', '--output', '='], ['json', 'table', 'wide']], // --output=, split at = by COMP_WORDBREAKS
      [['titan', '--output', '=', 't'], ['table']],
      [['titan', 'completion', ''], ['bash', 'fish', 'zsh']],
      [['titan', 'help', 'qu'], ['queue']],
      [['titan', 'submit', '-f', 'sp'], ['spec.yaml']],
      [['titan', 'submit', '--cpu', ''], []],
      [['titan', '--prefix', '/x', 'qu'], ['queue']],
      [['titan', '--endpoints', 'queue', 'sub'], ['submit']], // "queue" was --endpoints' value, not the command
      [['titan', 'queue', 'create', '--quota-cpu', '8', '--li'], ['--limit-cpu', '--limit-gpu', '--limit-mem']],
      [['titan', 'submit', '--time', '5', '--wa'], ['--wait']],
      [['titan', 'simulate', '--time', '--queue-'], ['--queue-column']], // simulate's --time takes no value
      [['titan', 'context', 'add', 'x', '--to'], ['--token-stdin']],
      [['titan', 'submit', '--image', 'b', '--', ''], []],
    ];
    const got = complete(cases.map(([line]) => line));
    cases.forEach(([line, expected], i) => expect(got[i], line.join(' ')).toEqual(expected));
  });

  it('refuses an unknown shell', async () => {
    const res = await runCli(['completion', 'tcsh']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^error: .*'tcsh' is invalid for argument 'shell'\. Allowed choices are bash, zsh, fish\./);
  });
});
