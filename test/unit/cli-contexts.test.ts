import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveCliConfig } from '../../internal/cli/context.js';
import { contextsFilePath, loadContextsFile, renderContextsDocument, type CliContext } from '../../internal/cli/contexts-file.js';
import { parseApiAddr, resolveApiConnection } from '../../pkg/config/api-connection.js';

// Resolution reads real files: a config file per test, certificates made by scripts/pki.sh (openssl).
let dir: string;
let pki: string;
let config: string;
const pem = (name: string): string => path.join(pki, name);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-contexts-'));
  pki = path.join(dir, 'pki');
  execFileSync('bash', [path.resolve(import.meta.dirname, '../../scripts/pki.sh'), pki], { stdio: 'ignore' });
  fs.writeFileSync(path.join(dir, 'token'), 'file-token\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let n = 0;
beforeEach(() => {
  config = path.join(dir, `config-${++n}.yaml`);
});

function writeConfig(contexts: Record<string, CliContext>, current?: string, mode = 0o600): void {
  fs.writeFileSync(config, renderContextsDocument({ contexts: new Map(Object.entries(contexts)), ...(current ? { current } : {}) }), { mode });
  fs.chmodSync(config, mode);
}

const TWO = {
  local: { endpoints: ['127.0.0.1:2379'], prefix: '/local' },
  prod: { endpoints: ['10.0.0.5:2379', '10.0.0.6:2379'], prefix: '/prod', addr: 'https://titan.example.com:4646', token: 'prod-token' },
};

describe('resolveCliConfig with contexts: flag > env > context > default', () => {
  it('uses the defaults without a config file, and names no context', () => {
    const resolved = resolveCliConfig({}, { TITAN_CONFIG: config });
    expect(resolved).toMatchObject({ endpoints: ['127.0.0.1:2379'], prefix: '/titan' });
    expect(resolved.context).toBeUndefined();
    expect(resolved.api).toBeUndefined();
  });

  it("fills what flags and env leave open from the current context", () => {
    writeConfig(TWO, 'prod');
    const env = { TITAN_CONFIG: config };
    expect(resolveCliConfig({}, env)).toMatchObject({
      context: 'prod',
      endpoints: ['10.0.0.5:2379', '10.0.0.6:2379'],
      prefix: '/prod',
      api: { addr: 'https://titan.example.com:4646', token: 'prod-token' },
    });
    // env beats the context, field by field
    expect(resolveCliConfig({}, { ...env, TITAN_TOKEN: 'env-token' })).toMatchObject({
      prefix: '/prod',
      api: { addr: 'https://titan.example.com:4646', token: 'env-token' },
    });
    // etcd endpoints given above the context's address (env, or a flag) mean etcd, not the API
    const viaEtcd = resolveCliConfig({}, { ...env, TITAN_ENDPOINTS: 'e:1' });
    expect(viaEtcd).toMatchObject({ endpoints: ['e:1'], prefix: '/prod' });
    expect(viaEtcd.api).toBeUndefined();
    expect(resolveCliConfig({ endpoints: 'f:1' }, { ...env, TITAN_ADDR: 'http://e:1' }).api).toBeUndefined();
    expect(resolveCliConfig({}, { ...env, TITAN_ENDPOINTS: 'e:1', TITAN_ADDR: 'http://e:1' }).api?.addr).toBe('http://e:1');
    // a flag beats env
    expect(resolveCliConfig({ endpoints: 'f:1', prefix: '/flag', addr: 'http://127.0.0.1:4646' }, { ...env, TITAN_ENDPOINTS: 'e:1', TITAN_ADDR: 'http://e:1' })).toMatchObject({
      endpoints: ['f:1'],
      prefix: '/flag',
      api: { addr: 'http://127.0.0.1:4646', token: 'prod-token' },
    });
  });

  it('picks the context from --context, then TITAN_CONTEXT, then the current one', () => {
    writeConfig(TWO, 'prod');
    const env = { TITAN_CONFIG: config };
    expect(resolveCliConfig({ context: 'local' }, env)).toMatchObject({ context: 'local', prefix: '/local' });
    expect(resolveCliConfig({ context: 'local' }, env).api).toBeUndefined();
    expect(resolveCliConfig({}, { ...env, TITAN_CONTEXT: 'local' })).toMatchObject({ context: 'local', prefix: '/local' });
    expect(resolveCliConfig({ context: 'prod' }, { ...env, TITAN_CONTEXT: 'local' })).toMatchObject({ context: 'prod', prefix: '/prod' });
  });

  it('refuses a context that does not exist, naming where its name came from', () => {
    writeConfig(TWO, 'gone');
    const env = { TITAN_CONFIG: config };
    expect(() => resolveCliConfig({ context: 'nope' }, env)).toThrowError(/^--context: no context "nope" in .* \(known: local, prod\)/);
    expect(() => resolveCliConfig({}, { ...env, TITAN_CONTEXT: 'nope' })).toThrowError(/^TITAN_CONTEXT: no context "nope"/);
    expect(() => resolveCliConfig({}, env)).toThrowError(/current: context "gone" does not exist; run titan context use NAME/);
    expect(() => resolveCliConfig({ context: 'x' }, { TITAN_CONFIG: path.join(dir, 'absent.yaml') })).toThrowError(/there are none/);
  });

  it("names a context's bad value by field and context", () => {
    writeConfig({ bad: { endpoints: ['nope'] }, badca: { endpoints: ['a:1'], etcdCa: path.join(dir, 'missing.pem') }, badaddr: { addr: 'ftp://x' } });
    const env = { TITAN_CONFIG: config };
    expect(() => resolveCliConfig({ context: 'bad' }, env)).toThrowError(/^endpoints of context bad: "nope" is not host:port/);
    expect(() => resolveCliConfig({ context: 'badca' }, env)).toThrowError(/^etcdCa of context badca: cannot read .*missing\.pem \(no such file\)/);
    expect(() => resolveCliConfig({ context: 'badaddr' }, env)).toThrowError(/^addr of context badaddr: "ftp:\/\/x" is not an http or https URL/);
    // what overrides the bad value is used instead
    expect(resolveCliConfig({ context: 'bad' }, { ...env, TITAN_ENDPOINTS: 'ok:1' }).endpoints).toEqual(['ok:1']);
  });

  it('takes TLS files and credentials from a context, each overridable', () => {
    writeConfig({
      secure: { endpoints: ['127.0.0.1:2379'], etcdCa: pem('ca.pem'), etcdCert: pem('titan-operator.pem'), etcdKey: pem('titan-operator-key.pem') },
      password: { endpoints: ['127.0.0.1:2379'], etcdUser: 'alice', etcdPassword: 'context-pw' },
    });
    const env = { TITAN_CONFIG: config };
    const secure = resolveCliConfig({ context: 'secure' }, env);
    expect(secure.etcd.endpoints).toEqual(['127.0.0.1:2379']);
    expect(secure.etcd.tls?.commonName).toBe('titan-operator');
    const asRoot = resolveCliConfig({ context: 'secure', etcdCert: pem('root.pem') }, { ...env, TITAN_ETCD_KEY: pem('root-key.pem') });
    expect(asRoot.etcd.tls?.commonName).toBe('root');
    expect(resolveCliConfig({ context: 'password' }, env).etcd.auth).toEqual({ user: 'alice', password: 'context-pw' });
    expect(resolveCliConfig({ context: 'password' }, { ...env, TITAN_ETCD_PASSWORD: 'env-pw' }).etcd.auth).toEqual({ user: 'alice', password: 'env-pw' });
  });

  it('refuses a config file other users can open, and a malformed one, naming the file', () => {
    writeConfig(TWO, 'prod', 0o644);
    expect(() => resolveCliConfig({}, { TITAN_CONFIG: config })).toThrowError(/is open to other users \(mode 644\) .* run chmod 600 /);
    fs.chmodSync(config, 0o640);
    expect(() => loadContextsFile({ TITAN_CONFIG: config })).toThrowError(/mode 640/);
    fs.writeFileSync(config, 'contexts: [1, 2\n', { mode: 0o600 });
    fs.chmodSync(config, 0o600);
    expect(() => loadContextsFile({ TITAN_CONFIG: config })).toThrowError(/config-\d+\.yaml: is not valid YAML/);
    fs.writeFileSync(config, 'contexts:\n  a:\n    endpoint: x:1\n');
    expect(() => loadContextsFile({ TITAN_CONFIG: config })).toThrowError(/contexts\.a: unknown field "endpoint" \(known: addr, token/);
    fs.writeFileSync(config, 'contexts:\n  a:\n    endpoints: x:1\n');
    expect(() => loadContextsFile({ TITAN_CONFIG: config })).toThrowError(/contexts\.a\.endpoints: must be a list/);
    fs.writeFileSync(config, 'contexts:\n  "bad name":\n    addr: http://a:1\n');
    expect(() => loadContextsFile({ TITAN_CONFIG: config })).toThrowError(/"bad name" is not a context name/);
    fs.writeFileSync(config, '');
    expect(loadContextsFile({ TITAN_CONFIG: config }).contexts.size).toBe(0);
  });

  it('finds the file at TITAN_CONFIG, else under XDG_CONFIG_HOME, else ~/.config', () => {
    expect(contextsFilePath({ TITAN_CONFIG: '/x/c.yaml', XDG_CONFIG_HOME: '/xdg' })).toBe('/x/c.yaml');
    expect(contextsFilePath({ XDG_CONFIG_HOME: '/xdg', HOME: '/home/u' })).toBe('/xdg/titan/config.yaml');
    expect(contextsFilePath({ XDG_CONFIG_HOME: 'relative', HOME: '/home/u' })).toBe('/home/u/.config/titan/config.yaml');
    expect(contextsFilePath({ HOME: '/home/u' })).toBe('/home/u/.config/titan/config.yaml');
  });
});

describe('API address and token', () => {
  it('accepts http(s) URLs and keeps origin and path', () => {
    expect(parseApiAddr('http://127.0.0.1:4646', '--addr')).toBe('http://127.0.0.1:4646');
    expect(parseApiAddr(' https://titan.example.com/ ', '--addr')).toBe('https://titan.example.com');
    expect(parseApiAddr('https://proxy.example.com/titan/', '--addr')).toBe('https://proxy.example.com/titan');
    expect(parseApiAddr('http://[::1]:4646', '--addr')).toBe('http://[::1]:4646');
  });

  it.each([
    ['127.0.0.1:4646', /^--addr: "127\.0\.0\.1:4646" has no scheme: use http:\/\/127\.0\.0\.1:4646 or https:/],
    ['localhost:4646', /has no scheme: use http:\/\/localhost:4646/],
    ['nonsense', /^--addr: "nonsense" is not a URL \(use http:\/\/host:port/],
    ['ftp://h:1', /is not an http or https URL/],
    ['http://user:pw@h:1', /must not hold a user or password/],
    ['http://h:1/?token=x', /has a query or fragment/],
  ])('refuses %s', (addr, message) => {
    expect(() => resolveApiConnection({ addr }, {})).toThrowError(message);
  });

  it('names TITAN_ADDR when the env holds the bad value', () => {
    expect(() => resolveApiConnection({}, { TITAN_ADDR: 'h:1' })).toThrowError(/^TITAN_ADDR: /);
  });

  it('reads the token from TITAN_TOKEN or TITAN_TOKEN_FILE, never both, and never repeats it', () => {
    const addr = 'http://127.0.0.1:4646';
    expect(resolveApiConnection({ addr }, { TITAN_TOKEN: ' abc.def ' })).toEqual({ addr, token: 'abc.def' });
    expect(resolveApiConnection({ addr }, { TITAN_TOKEN_FILE: path.join(dir, 'token') })).toEqual({ addr, token: 'file-token' });
    expect(() => resolveApiConnection({ addr }, { TITAN_TOKEN: 'a', TITAN_TOKEN_FILE: path.join(dir, 'token') })).toThrowError(/^TITAN_TOKEN_FILE: set TITAN_TOKEN or TITAN_TOKEN_FILE, not both/);
    expect(() => resolveApiConnection({ addr }, { TITAN_TOKEN_FILE: path.join(dir, 'none') })).toThrowError(/^TITAN_TOKEN_FILE: cannot read .* \(no such file\)/);
    let message = '';
    try {
      resolveApiConnection({ addr }, { TITAN_TOKEN: 'secret part' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^TITAN_TOKEN: is not a token/);
    expect(message).not.toContain('secret');
    // no address: the CLI talks to etcd and the token is not looked at
    expect(resolveApiConnection({}, { TITAN_TOKEN: 'secret part' })).toBeUndefined();
  });

  it('reads the CA only for an https address', () => {
    const https = resolveApiConnection({ addr: 'https://h:1', apiCacert: pem('ca.pem') }, {});
    expect(https?.ca?.toString()).toContain('BEGIN CERTIFICATE');
    expect(() => resolveApiConnection({ addr: 'http://h:1', apiCacert: pem('ca.pem') }, {})).toThrowError(/^--api-cacert: is a CA for TLS but the API address http:\/\/h:1 is plain http: use https:\/\/h:1/);
    expect(() => resolveApiConnection({}, { TITAN_API_CACERT: pem('ca.pem') })).toThrowError(/^TITAN_API_CACERT: needs an API address/);
    expect(() => resolveApiConnection({ addr: 'https://h:1', apiCacert: path.join(dir, 'token') }, {})).toThrowError(/^--api-cacert: .* is not a PEM certificate/);
  });
});
