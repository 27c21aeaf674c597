import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { resolveCliConfig } from '../../internal/cli/context.js';
import type { CliIO } from '../../internal/cli/io.js';
import { describeError, exitCodeFor, formatError, parseOutputFormat, sniffOutputFormat } from '../../internal/cli/output.js';
import { runCli } from '../../cmd/titan/program.js';
import { TitanError } from '../../pkg/model/index.js';

function bufferIO(env: NodeJS.ProcessEnv = {}): CliIO & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    errIsTTY: false,
    env,
    out: (t: string) => void (io.stdout += t),
    err: (t: string) => void (io.stderr += t),
  };
  return io;
}

describe('--output', () => {
  it('accepts table, wide and json, any case', () => {
    expect(parseOutputFormat('table')).toBe('table');
    expect(parseOutputFormat('Wide')).toBe('wide');
    expect(parseOutputFormat('json')).toBe('json');
    expect(parseOutputFormat(' JSON ')).toBe('json');
  });

  it('rejects anything else as InvalidInput naming the flag', () => {
    expect(() => parseOutputFormat('yaml')).toThrowError(/^output: "yaml" is not an output format/);
    try {
      parseOutputFormat('');
    } catch (err) {
      expect(err).toBeInstanceOf(TitanError);
      expect((err as TitanError).code).toBe('InvalidInput');
      expect((err as TitanError).field).toBe('output');
    }
  });

  it('is sniffed from raw argv for errors raised before parsing finishes', () => {
    expect(sniffOutputFormat(['list'])).toBe('table');
    expect(sniffOutputFormat(['list', '--output', 'json'])).toBe('json');
    expect(sniffOutputFormat(['--output=json', 'list'])).toBe('json');
    expect(sniffOutputFormat(['-o', 'json', 'submit', '--bad'])).toBe('json');
    expect(sniffOutputFormat(['-ojson', 'list'])).toBe('json');
    expect(sniffOutputFormat(['-o', 'yaml'])).toBe('table');
    expect(sniffOutputFormat(['-o', 'json', 'list', '-o', 'wide'])).toBe('table');
    expect(sniffOutputFormat(['submit', '--image', 'x', '--', '--output', 'json'])).toBe('table');
  });
});

describe('errors', () => {
  it('maps bad input and usage errors to 2, everything else to 1', () => {
    expect(exitCodeFor(new TitanError('InvalidInput', 'x'))).toBe(2);
    expect(exitCodeFor(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"))).toBe(2);
    expect(exitCodeFor(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'))).toBe(0);
    for (const code of ['NotFound', 'Conflict', 'Unavailable', 'Internal'] as const) {
      expect(exitCodeFor(new TitanError(code, 'x'))).toBe(1);
    }
    expect(exitCodeFor(new Error('boom'))).toBe(1);
  });

  it('formats one line, or a JSON document', () => {
    const err = new TitanError('Unavailable', 'cannot reach etcd\n  at somewhere');
    expect(formatError(err, 'table')).toBe('error: cannot reach etcd at somewhere\n');
    expect(JSON.parse(formatError(err, 'json'))).toEqual({ error: { code: 'Unavailable', message: 'cannot reach etcd at somewhere' } });
    expect(describeError(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"))).toEqual({
      code: 'InvalidInput',
      message: "unknown option '--x'",
    });
    expect(describeError('weird')).toEqual({ code: 'Internal', message: 'weird' });
  });
});

describe('global options', () => {
  it('flags beat TITAN_* env, which beats the defaults', () => {
    expect(resolveCliConfig({}, {})).toEqual({
      endpoints: ['127.0.0.1:2379'],
      etcd: { endpoints: ['127.0.0.1:2379'] },
      prefix: '/titan',
      output: 'table',
      verbose: false,
    });
    const env = { TITAN_ENDPOINTS: 'a:1,b:2', TITAN_PREFIX: '/env' };
    expect(resolveCliConfig({}, env)).toMatchObject({ endpoints: ['a:1', 'b:2'], prefix: '/env' });
    expect(resolveCliConfig({ endpoints: 'c:3', prefix: '/flag', output: 'json', verbose: true }, env)).toEqual({
      endpoints: ['c:3'],
      etcd: { endpoints: ['c:3'] },
      prefix: '/flag',
      output: 'json',
      verbose: true,
    });
  });

  it('rejects bad endpoints and prefixes', () => {
    expect(() => resolveCliConfig({ endpoints: 'nope' }, {})).toThrowError(/endpoints/);
    expect(() => resolveCliConfig({ prefix: 'no-slash' }, {})).toThrowError(/prefix/);
    expect(() => resolveCliConfig({ prefix: '/' }, {})).toThrowError(/prefix/);
  });
});

describe('command line parsing (in process, no etcd needed)', () => {
  it.each([
    [['--bogus'], /^error: unknown option '--bogus'\n$/],
    [['status'], /^error: missing required argument 'id'\n$/],
    [['status', 'a', 'b'], /^error: too many arguments for 'status'/],
    [['lsit'], /^error: unknown command 'lsit'.*Did you mean list\?/],
    [['list', '--output', 'xml'], /^error: output: "xml" is not an output format/],
    [['list', '--state', 'Done'], /^error: state: "Done" is not a job state/],
    [['list', '--status', 'Done'], /^error: state: "Done" is not a job state/],
    [['list', '--sort', 'name'], /^error: sort: "name" is not a sort order \(use age, priority, queue\)\n$/],
    [['list', '--since', 'yesterday'], /^error: since: "yesterday" is not a duration/],
    [['list', '--label', 'team'], /^error: label: "team" is not KEY=VALUE/],
    [['list', '--queue', 'a b'], /^error: queue: "a b" must be/],
    [['wait'], /^error: missing required argument 'ids'\n$/],
    [['submit', '--image', 'x', '--gpu'], /^error: option '--gpu <n>' argument missing\n$/],
  ])('%j exits 2 with one error line', async (argv, message) => {
    const io = bufferIO();
    expect(await runCli(argv, io)).toBe(2);
    expect(io.stdout).toBe('');
    expect(io.stderr).toMatch(message);
  });

  it('reports usage errors as JSON with --output json', async () => {
    const io = bufferIO();
    expect(await runCli(['--output', 'json', 'status'], io)).toBe(2);
    expect(JSON.parse(io.stderr)).toEqual({ error: { code: 'InvalidInput', message: "missing required argument 'id'" } });
  });

  it('help exits 0 on stdout; no command shows help and exits 2', async () => {
    const help = bufferIO();
    expect(await runCli(['--help'], help)).toBe(0);
    expect(help.stdout).toMatch(/Usage: titan/);
    expect(help.stdout).toMatch(/submit/);
    const sub = bufferIO();
    expect(await runCli(['submit', '--help'], sub)).toBe(0);
    expect(sub.stdout).toMatch(/--image <image>/);
    const none = bufferIO();
    expect(await runCli([], none)).toBe(2);
    expect(none.stderr).toMatch(/Usage: titan/);
  });

  it('takes global options before or after the command', async () => {
    const io = bufferIO();
    expect(await runCli(['list', '--output', 'json', '--state', 'nope'], io)).toBe(2);
    expect(JSON.parse(io.stderr).error.message).toMatch(/^state: /);
  });
});
