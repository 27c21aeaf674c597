import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster } from '../harness/cluster.js';
import { requireDocker, TEST_IMAGE } from '../harness/docker.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { waitFor } from '../harness/wait.js';
import { runCli, type CliResult } from '../cli/run-cli.js';

// Password auth has a token, and etcd3 sends it once when a watch or
// keepalive stream opens. With a 2 s token TTL, a cluster that idles past it,
// and one whose etcd restarts (all tokens gone), must still run jobs.

const TTL_SECONDS = 2;
let etcd: EtcdServer;
let cluster: ProcessCluster;
let dir: string;

const root = (...args: string[]): Promise<CliResult> =>
  runCli(['--etcd-user', 'root', ...args], {
    endpoints: etcd.endpoints,
    prefix: cluster.prefix,
    env: { TITAN_ETCD_PASSWORD: 'root-secret' },
    timeoutMs: 60_000,
  });

function passwordFile(name: string, password: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return file;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  await requireDocker();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-token-'));
  etcd = await startEtcd({ name: 'token-ttl', args: ['--auth-token', 'simple', '--auth-token-ttl', String(TTL_SECONDS)] });
  cluster = new ProcessCluster(etcd);
  const setup = await root('auth', 'setup', '--password-file', passwordFile('master-new', 'master-secret'));
  expect(setup.code, setup.stderr).toBe(0);
  const node = await root('auth', 'add-node', 'tw1', '--password-file', passwordFile('node-new', 'node-secret'));
  expect(node.code, node.stderr).toBe(0);
});

afterAll(async () => {
  await cluster?.stop();
  await etcd?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function runJob(tag: string): Promise<void> {
  const res = await root('submit', '--image', TEST_IMAGE, '--cmd', `echo ${tag}`, '--wait', '--timeout', '1m');
  expect(res.code, `${res.stderr}\n${cluster.logs()}`).toBe(0);
  const logs = await root('logs', res.stdout.trim());
  expect(logs.stdout).toBe(`${tag}\n`);
}

describe('password auth with a short token TTL', () => {
  it('jobs still run after the cluster idles past the TTL, and after etcd restarts', async () => {
    cluster.startMaster(['--etcd-user', 'titan-master', '--etcd-password-file', path.join(dir, 'master-new')]);
    cluster.startWorker('tw1', ['--etcd-user', 'titan-node-tw1', '--etcd-password-file', path.join(dir, 'node-new')]);
    await waitFor(() => `node tw1 registered\n${cluster.logs()}`, async () => {
      const res = await root('nodes', '-o', 'json');
      return res.code === 0 && res.stdout.includes('"tw1"');
    });
    await runJob('before idling');

    await sleep((TTL_SECONDS * 3 + 1) * 1000);
    await runJob('after idling');

    await etcd.restart();
    await sleep((TTL_SECONDS * 3 + 1) * 1000);
    await runJob('after an etcd restart');

    // A watch whose stream carried the lost token is cancelled once and re-created with a new one.
    for (const p of cluster.processes) expect(p.child.exitCode, p.output()).toBeNull();
  }, 120_000);
});
