import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ContextView } from '../../internal/cli/context-commands.js';
import { startEtcd } from '../harness/etcd.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { makePki, type Pki } from '../security/pki.js';
import { runCli, type CliOptions } from './run-cli.js';

// `titan context ...` through the real binary, each test with its own config
// file; TITAN_ENDPOINTS is not set, so commands reach etcd through a context.
const ctx = etcdSuite('cli-contexts');
let home: string;
let config: string;

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-cli-contexts-'));
  config = path.join(home, 'titan', 'config.yaml');
});
afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

const cli = (args: string[], options: CliOptions = {}) => runCli(args, { ...options, env: { TITAN_CONFIG: config, ...options.env } });
const readConfig = (): string => fs.readFileSync(config, 'utf8');
const TOKEN = 'tok_5ecret-Value.42';

async function listJson(args: string[] = []): Promise<ContextView[]> {
  const res = await cli([...args, 'context', 'list', '-o', 'json']);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as ContextView[];
}

describe('titan context add|use|list|remove|current', () => {
  it('keeps contexts in a private file and never prints a secret', async () => {
    const add = await cli(['context', 'add', 'prod', '--addr', 'https://titan.example.com:4646/', '--token-stdin'], { stdin: `${TOKEN}\n` });
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toBe('context prod added\n');
    const local = await cli(['context', 'add', 'local', '--endpoints', ctx.etcd.endpoints, '--prefix', ctx.prefix, '--use', '-o', 'json']);
    expect(local.code, local.stderr).toBe(0);
    expect(JSON.parse(local.stdout)).toMatchObject({ name: 'local', current: true, endpoints: [ctx.etcd.endpoints], prefix: ctx.prefix });

    expect(fs.statSync(config).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(config)).mode & 0o777).toBe(0o700);
    expect(readConfig()).toContain(TOKEN);
    expect(fs.readdirSync(path.dirname(config))).toEqual(['config.yaml']); // no temporary file left

    const table = await cli(['context', 'list']);
    expect(table.code, table.stderr).toBe(0);
    const rows = table.stdout.trimEnd().split('\n').map((l) => l.split(/\s{3,}/));
    expect(rows[0]).toEqual(['CURRENT', 'NAME', 'API', 'ETCD', 'PREFIX', 'AUTH']);
    expect(rows.slice(1)).toEqual([
      ['*', 'local', '-', ctx.etcd.endpoints, ctx.prefix, '-'],
      ['-', 'prod', 'https://titan.example.com:4646', '-', '-', 'token'],
    ]);
    const views = await listJson();
    expect(views.map((v) => [v.name, v.current, v.hasToken])).toEqual([
      ['local', true, false],
      ['prod', false, true],
    ]);
    for (const out of [add.stdout, add.stderr, table.stdout, JSON.stringify(views)]) expect(out).not.toContain(TOKEN);

    const current = await cli(['context', 'current']);
    expect(current.stdout).toBe('local\n');
    const used = await cli(['context', 'use', 'prod'], { env: { TITAN_ENDPOINTS: '127.0.0.1:1' } });
    expect(used.code, used.stderr).toBe(0);
    expect(used.stdout).toBe('switched to context prod\n');
    expect(used.stderr).toBe('titan: note: set in the environment, TITAN_ENDPOINTS overrides the context\n');
    expect(JSON.parse((await cli(['context', 'current', '-o', 'json'])).stdout)).toEqual({ name: 'prod', from: 'current' });
    expect(JSON.parse((await cli(['context', 'current', '-o', 'json'], { env: { TITAN_CONTEXT: 'local' } })).stdout)).toEqual({ name: 'local', from: 'TITAN_CONTEXT' });
    expect((await listJson(['--context', 'local'])).find((v) => v.current)?.name).toBe('local');

    const removed = await cli(['context', 'remove', 'prod']);
    expect(removed.stdout).toBe('context prod removed; no context is current now\n');
    expect((await listJson()).map((v) => v.name)).toEqual(['local']);
    const none = await cli(['context', 'current']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^error: no current context in .*config\.yaml \(titan context use NAME/);
    expect(fs.statSync(config).mode & 0o777).toBe(0o600);
  });

  it('replaces a context only when asked', async () => {
    expect((await cli(['context', 'add', 'a', '--endpoints', '127.0.0.1:1'])).code).toBe(0);
    const again = await cli(['context', 'add', 'a', '--endpoints', '127.0.0.1:2']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: context "a" exists in .*: add --replace to overwrite it/);
    const replaced = await cli(['context', 'add', 'a', '--endpoints', '127.0.0.1:2', '--replace']);
    expect(replaced.stdout).toBe('context a replaced\n');
    expect((await listJson())[0].endpoints).toEqual(['127.0.0.1:2']);
  });

  it('refuses bad input with a clear error, exit 2, and writes nothing', async () => {
    const refusals: [string[], RegExp, string?][] = [
      [['context', 'add', 'x', '--addr', 'ftp://h:1'], /^error: --addr: "ftp:\/\/h:1" is not an http or https URL/],
      [['context', 'add', 'x', '--addr', '127.0.0.1:4646'], /^error: --addr: "127\.0\.0\.1:4646" has no scheme/],
      [['context', 'add', 'x', '--endpoints', 'nope'], /^error: --endpoints: "nope" is not host:port/],
      [['context', 'add', 'x'], /^error: --addr: a context needs an API address \(--addr URL\) or etcd endpoints/],
      [['context', 'add', 'bad name', '--endpoints', 'h:1'], /^error: context name: "bad name" is not a context name/],
      [['context', 'add', 'x', '--endpoints', 'h:1', '--etcd-ca', '/nonexistent/ca.pem'], /^error: --etcd-ca: cannot read \/nonexistent\/ca\.pem \(no such file\)/],
      [['context', 'add', 'x', '--etcd-ca', '/nonexistent/ca.pem'], /^error: --etcd-ca: is for etcd: give --endpoints too/],
      [['context', 'add', 'x', '--endpoints', 'h:1', '--token-stdin'], /^error: --token-stdin: a token is for an API: give --addr too/, TOKEN],
      [['context', 'add', 'x', '--addr', 'http://h:1', '--token-stdin'], /^error: --token-stdin: is not a token/, 'two words\n'],
      [['context', 'add', 'x', '--addr', 'http://h:1', '--token-stdin'], /^error: --token-stdin: is empty/, ''],
      [['context', 'add', 'x', '--addr', 'http://h:1', '--api-cacert', '/nonexistent.pem'], /^error: --api-cacert: cannot read/],
      [['context', 'add', 'x', '--endpoints', 'h:1', '--etcd-password-stdin'], /^error: --etcd-password-stdin: needs --etcd-user/, 'pw'],
      [['context', 'add', 'x', '--prefix', 'nope', '--endpoints', 'h:1'], /^error: --prefix: "nope" is not a key prefix/],
    ];
    const results = await Promise.all(refusals.map(([args, , stdin]) => cli(args, stdin !== undefined ? { stdin } : {})));
    for (const [i, [args, message]] of refusals.entries()) {
      const res = results[i];
      expect(res.code, `${args.join(' ')}\n${res.stderr}`).toBe(2);
      expect(res.stderr).toMatch(message);
      expect(res.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(res.stderr).not.toContain('two words');
      expect(fs.existsSync(path.dirname(config)), args.join(' ')).toBe(false);
    }

    // With a file there, a refusal leaves it as it was.
    expect((await cli(['context', 'add', 'keep', '--endpoints', '127.0.0.1:1', '--use'])).code).toBe(0);
    const before = readConfig();
    for (const args of [
      ['context', 'add', 'x', '--addr', 'nonsense'],
      ['context', 'use', 'missing'],
      ['context', 'remove', 'missing'],
      ['context', 'use', '-bad'],
    ]) {
      const res = await cli(args);
      expect(res.code, res.stderr).not.toBe(0);
      expect(readConfig()).toBe(before);
    }
    expect((await cli(['context', 'use', 'missing'])).stderr).toMatch(/^error: no context "missing" in .*config\.yaml \(known: keep\)/);
  });

  it('refuses a config file other users can read, and changes nothing', async () => {
    expect((await cli(['context', 'add', 'a', '--endpoints', ctx.etcd.endpoints, '--use'])).code).toBe(0);
    fs.chmodSync(config, 0o644);
    const before = readConfig();
    for (const args of [['context', 'list'], ['context', 'add', 'b', '--endpoints', 'h:1'], ['queue', 'list']]) {
      const res = await cli(args);
      expect(res.code).toBe(2);
      expect(res.stderr).toBe(`error: ${config}: is open to other users (mode 644) and may hold tokens and passwords; run chmod 600 ${config}\n`);
    }
    expect(readConfig()).toBe(before);
    expect(fs.statSync(config).mode & 0o777).toBe(0o644);
  });

  it("reaches etcd through a context's endpoints and prefix; env and flags still win", async () => {
    expect((await cli(['context', 'add', 'here', '--endpoints', ctx.etcd.endpoints, '--prefix', ctx.prefix, '--use'])).code).toBe(0);
    expect((await cli(['context', 'add', 'dead', '--endpoints', '127.0.0.1:1', '--prefix', ctx.prefix])).code).toBe(0);

    const created = await cli(['queue', 'create', 'via-context', '--weight', '3']);
    expect(created.code, created.stderr).toBe(0);
    expect((await ctx.store.getQueue('via-context'))?.value.weight).toBe(3);

    const dead = await cli(['--context', 'dead', 'queue', 'list']);
    expect(dead.code).toBe(1);
    expect(dead.stderr).toMatch(/127\.0\.0\.1:1/);
    const viaEnv = await cli(['queue', 'list', '-o', 'json'], { env: { TITAN_CONTEXT: 'dead', TITAN_ENDPOINTS: ctx.etcd.endpoints } });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect((JSON.parse(viaEnv.stdout) as { name: string }[]).map((q) => q.name)).toContain('via-context');
    const viaFlag = await cli(['--context', 'dead', '--endpoints', ctx.etcd.endpoints, 'queue', 'list', '-o', 'json']);
    expect(viaFlag.code, viaFlag.stderr).toBe(0);

    // Another prefix by flag: the same etcd, none of this prefix's queues.
    const other = await cli(['--prefix', `${ctx.prefix}-other`, 'queue', 'list', '-o', 'json']);
    expect(other.code, other.stderr).toBe(0);
    expect((JSON.parse(other.stdout) as { name: string }[]).map((q) => q.name)).not.toContain('via-context');
  });
});

describe('a context with TLS and a client certificate', () => {
  let pki: Pki;
  beforeAll(() => {
    pki = makePki();
  });
  afterAll(() => pki?.remove());

  it('keeps the certificate paths absolute and uses them from anywhere', async () => {
    const etcd = await startEtcd({ name: 'cli-contexts-tls', tls: { pkiDir: pki.dir, clientCertAuth: true } });
    try {
      // Relative paths, from the PKI dir: saved absolute.
      const add = await cli(
        ['context', 'add', 'secure', '--endpoints', etcd.endpoints, '--etcd-ca', 'ca.pem', '--etcd-cert', 'titan-operator.pem', '--etcd-key', 'titan-operator-key.pem', '-o', 'json'],
        { cwd: pki.dir },
      );
      expect(add.code, add.stderr).toBe(0);
      expect(JSON.parse(add.stdout)).toMatchObject({ etcdCa: path.join(pki.dir, 'ca.pem'), etcdCert: path.join(pki.dir, 'titan-operator.pem') });
      expect((await cli(['context', 'list'])).stdout).toMatch(/secure .* cert\n$/);

      const created = await cli(['--context', 'secure', 'queue', 'create', 'tls-team']);
      expect(created.code, created.stderr).toBe(0);
      const listed = await cli(['queue', 'list', '-o', 'json'], { env: { TITAN_CONTEXT: 'secure' } });
      expect(listed.code, listed.stderr).toBe(0);
      expect((JSON.parse(listed.stdout) as { name: string }[]).map((q) => q.name)).toContain('tls-team');

      // Without the context, the same etcd refuses the plain client.
      const plain = await cli(['queue', 'list'], { env: { TITAN_ENDPOINTS: etcd.endpoints } });
      expect(plain.code).toBe(1);
    } finally {
      await etcd.stop();
    }
  });
});
