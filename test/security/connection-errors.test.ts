import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { freePort } from '../harness/ports.js';
import { BIN, startProcess } from '../harness/processes.js';
import { runCli, type CliResult } from '../cli/run-cli.js';
import { makePki, type Pki } from './pki.js';

// Every way a connection to etcd can fail, through the real binaries: one
// line on stderr that says what is wrong and what to do, quickly, non-zero.

let pki: Pki;
let foreign: Pki; // another CA: its certificates mean nothing to our etcd
let certEtcd: EtcdServer; // TLS, --client-cert-auth, auth on
let passwordEtcd: EtcdServer; // TLS, password auth on
let plainEtcd: EtcdServer;
const prefix = '/titan';

const cli = (endpoints: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
  runCli(args, { endpoints, prefix, env, timeoutMs: 20_000 });

function expectOneLine(res: CliResult, code: number, pattern: RegExp): void {
  expect(res.signal, res.stderr).toBeNull();
  expect(res.code, res.stderr).toBe(code);
  expect(res.stderr).toMatch(pattern);
  expect(res.stderr.trimEnd().split('\n'), res.stderr).toHaveLength(1);
  expect(res.ms).toBeLessThan(8000);
}

beforeAll(async () => {
  pki = makePki(['n1']);
  foreign = makePki();
  [certEtcd, passwordEtcd, plainEtcd] = await Promise.all([
    startEtcd({ name: 'tls-cert', tls: { pkiDir: pki.dir, clientCertAuth: true } }),
    startEtcd({ name: 'tls-password', tls: { pkiDir: pki.dir } }),
    startEtcd({ name: 'plain' }),
  ]);
  const setup = await cli(certEtcd.endpoints, [...pki.flags('root'), 'auth', 'setup']);
  expect(setup.code, setup.stderr).toBe(0);
  const node = await cli(certEtcd.endpoints, [...pki.flags('root'), 'auth', 'add-node', 'n1']);
  expect(node.code, node.stderr).toBe(0);
  const pw = await cli(passwordEtcd.endpoints, ['--etcd-ca', pki.ca, '--etcd-user', 'root', 'auth', 'setup'], { TITAN_ETCD_PASSWORD: 'root-secret' });
  expect(pw.code, pw.stderr).toBe(0);
});

afterAll(async () => {
  await Promise.all([certEtcd?.stop(), passwordEtcd?.stop(), plainEtcd?.stop()]);
  pki?.remove();
  foreign?.remove();
});

describe('connecting to etcd with TLS and auth', () => {
  it('works with the right certificate', async () => {
    const res = await cli(certEtcd.endpoints, [...pki.flags('root'), 'list']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toBe('no jobs\n');
  });

  it('unreachable endpoint', async () => {
    const port = await freePort();
    const res = await cli(`127.0.0.1:${port}`, [...pki.flags('root'), 'list']);
    expectOneLine(res, 1, new RegExp(`^error: cannot reach etcd at https://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): is etcd running there\\? check --endpoints`));
  });

  it('wrong CA', async () => {
    const res = await cli(certEtcd.endpoints, ['--etcd-ca', foreign.ca, ...pki.flags('root').slice(2), 'list']);
    expectOneLine(res, 1, /^error: etcd's server certificate at https:\/\/127\.0\.0\.1:\d+ is not signed by the CA given with --etcd-ca \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
  });

  it('no client certificate', async () => {
    const res = await cli(certEtcd.endpoints, ['--etcd-ca', pki.ca, 'list']);
    expectOneLine(res, 1, /^error: etcd at https:\/\/127\.0\.0\.1:\d+ requires a client certificate \(\w+\): give --etcd-cert and --etcd-key/);
  });

  it('a client certificate of another CA is rejected', async () => {
    const res = await cli(certEtcd.endpoints, ['--etcd-ca', pki.ca, ...foreign.flags('root').slice(2), 'list']);
    expectOneLine(res, 1, /^error: etcd at https:\/\/127\.0\.0\.1:\d+ rejected the client certificate \(CN root\) \(\w+\): use one signed by etcd's --trusted-ca-file/);
  });

  it('an http:// endpoint with TLS flags is bad input', async () => {
    const res = await cli(`http://${certEtcd.endpoints}`, [...pki.flags('root'), 'list']);
    expectOneLine(res, 2, /^error: TITAN_ENDPOINTS: http:\/\/127\.0\.0\.1:\d+ is plain http but TLS is configured .*use https:\/\//);
    const flag = await runCli(['--endpoints', `http://${certEtcd.endpoints}`, ...pki.flags('root'), 'list']);
    expectOneLine(flag, 2, /^error: --endpoints: http:\/\/.* is plain http but TLS is configured/);
  });

  it('plain http to a TLS etcd says to use https', async () => {
    const res = await cli(certEtcd.endpoints, ['list']);
    expectOneLine(res, 1, /^error: etcd at http:\/\/127\.0\.0\.1:\d+ speaks TLS: use https:\/\/127\.0\.0\.1:\d+ and give its CA with --etcd-ca/);
  });

  it('TLS to a plain etcd says it does not speak TLS', async () => {
    const res = await cli(plainEtcd.endpoints, [...pki.flags('root'), 'list']);
    expectOneLine(res, 1, /^error: etcd at https:\/\/127\.0\.0\.1:\d+ does not speak TLS \(\w+\): use http:\/\//);
  });

  it('permission denied names the key and the user', async () => {
    const res = await cli(certEtcd.endpoints, [...pki.flags('titan-node-n1'), 'queue', 'create', 'q1']);
    // A node may not even read the queues: the first call, a read, is denied.
    expectOneLine(res, 1, /^error: etcd denied user titan-node-n1 \(client certificate\) KV\.range on \/titan\/queues\/: the user's roles need read on it/);
    const read = await cli(certEtcd.endpoints, [...pki.flags('titan-node-n1'), 'nodes']);
    expectOneLine(read, 1, /^error: etcd denied user titan-node-n1 \(client certificate\) KV\.range on \/titan\/\w+\/?: the user's roles need read on it/);
  });

  it('a certificate without an etcd user is denied', async () => {
    const res = await cli(certEtcd.endpoints, [...pki.flags('titan-operator'), 'list']);
    expectOneLine(res, 1, /^error: etcd denied user titan-operator \(client certificate\) KV\.range on \/titan\/jobs\//);
  });

  it('a wrong password', async () => {
    const res = await cli(passwordEtcd.endpoints, ['--etcd-ca', pki.ca, '--etcd-user', 'root', 'list'], { TITAN_ETCD_PASSWORD: 'wrong' });
    expectOneLine(res, 1, /^error: etcd at https:\/\/127\.0\.0\.1:\d+ rejected user root: wrong user name or password; check --etcd-user and TITAN_ETCD_PASSWORD/);
    const good = await cli(passwordEtcd.endpoints, ['--etcd-ca', pki.ca, '--etcd-user', 'root', 'list'], { TITAN_ETCD_PASSWORD: 'root-secret' });
    expect(good.code, good.stderr).toBe(0);
  });

  it('no credentials at all where auth is on', async () => {
    const res = await cli(passwordEtcd.endpoints, ['--etcd-ca', pki.ca, 'list']);
    expectOneLine(res, 1, /^error: etcd at https:\/\/127\.0\.0\.1:\d+ rejected the request of an anonymous client \(.*user name is empty\); .*--etcd-user/);
  });

  it('bad files and flags are bad input naming the flag or variable', async () => {
    const missing = await cli(certEtcd.endpoints, ['--etcd-ca', '/nonexistent/ca.pem', 'list']);
    expectOneLine(missing, 2, /^error: --etcd-ca: cannot read \/nonexistent\/ca\.pem \(no such file\)/);
    const env = await cli(certEtcd.endpoints, ['list'], { TITAN_ETCD_CERT: pki.ca, TITAN_ETCD_KEY: '/nonexistent/key.pem' });
    expectOneLine(env, 2, /^error: TITAN_ETCD_KEY: cannot read \/nonexistent\/key\.pem/);
    const notPem = await cli(certEtcd.endpoints, ['--etcd-ca', '/etc/hostname', 'list']);
    expectOneLine(notPem, 2, /^error: --etcd-ca: \/etc\/hostname is not a PEM certificate/);
    const mismatch = await cli(certEtcd.endpoints, ['--etcd-ca', pki.ca, '--etcd-cert', `${pki.dir}/root.pem`, '--etcd-key', `${pki.dir}/titan-master-key.pem`, 'list']);
    expectOneLine(mismatch, 2, /^error: --etcd-key: does not belong to the certificate given with --etcd-cert/);
    const noPassword = await cli(passwordEtcd.endpoints, ['--etcd-ca', pki.ca, '--etcd-user', 'root', 'list']);
    expectOneLine(noPassword, 2, /^error: --etcd-user: needs a password: set TITAN_ETCD_PASSWORD or --etcd-password-file/);
    const passwordFlag = await cli(passwordEtcd.endpoints, ['--etcd-user', 'root', '--etcd-password', 'x', 'list']);
    expect(passwordFlag.code).toBe(2);
  });

  it('titan-master and titan-worker fail to start the same way', async () => {
    const master = startProcess('master', BIN.master, ['--etcd-ca', pki.ca], { TITAN_ENDPOINTS: certEtcd.endpoints, TITAN_PREFIX: prefix });
    const worker = startProcess('worker', BIN.worker, ['--node-id', 'n1', '--docker', 'off', '--etcd-ca', foreign.ca, ...pki.flags('titan-node-n1').slice(2)], {
      TITAN_ENDPOINTS: certEtcd.endpoints,
      TITAN_PREFIX: prefix,
    });
    const started = Date.now();
    const [masterCode, workerCode] = await Promise.all([master.exited, worker.exited]);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(masterCode, master.output()).toBe(1);
    expect(master.output()).toMatch(/error: etcd at https:\/\/127\.0\.0\.1:\d+ requires a client certificate/);
    expect(workerCode, worker.output()).toBe(1);
    expect(worker.output()).toMatch(/error: etcd's server certificate at .* is not signed by the CA given with --etcd-ca/);
  });
});

describe('errors that are not about connecting', () => {
  it('a full etcd says it is out of space, not unreachable', async () => {
    const small = await startEtcd({ name: 'nospace', args: ['--quota-backend-bytes', String(2 * 1024 * 1024)] });
    const client = new Etcd3({ hosts: small.url });
    try {
      const value = Buffer.alloc(512 * 1024, 'x');
      for (let i = 0; i < 40; i++) {
        try {
          await client.put(`/filler/${i}`).value(value);
        } catch {
          break; // NOSPACE: the alarm is raised
        }
      }
      // A write that no Titan check stops first (submit refuses earlier, on the storage alarm).
      const res = await cli(small.endpoints, ['queue', 'create', 'q1']);
      expectOneLine(res, 1, /^error: etcd is out of space \(.*database space exceeded\)/);
    } finally {
      client.close();
      await small.stop();
    }
  });
});
