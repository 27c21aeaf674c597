import fs from 'node:fs';
import path from 'node:path';
import { EtcdPermissionDeniedError, type Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEtcd } from '../../pkg/store/index.js';
import { ProcessCluster } from '../harness/cluster.js';
import { requireDocker, TEST_IMAGE } from '../harness/docker.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { BIN, startProcess } from '../harness/processes.js';
import { waitFor } from '../harness/wait.js';
import { runCli, type CliResult } from '../cli/run-cli.js';
import { makePki, type Pki } from './pki.js';

// A whole cluster on etcd with TLS, --client-cert-auth and auth on: every
// component is the etcd user its certificate names, with its own role.

let pki: Pki;
let etcd: EtcdServer;
let cluster: ProcessCluster;

/** A raw etcd client as the holder of certificate `name`. */
function asUser(name: string): Etcd3 {
  const read = (file: string): Buffer => fs.readFileSync(path.join(pki.dir, file));
  return connectEtcd({ endpoints: [etcd.endpoints], tls: { ca: read('ca.pem'), cert: read(`${name}.pem`), key: read(`${name}-key.pem`) } });
}

/** The CLI as the holder of certificate `name`. */
const cliAs = (name: string, ...args: string[]): Promise<CliResult> =>
  runCli(args, { endpoints: etcd.endpoints, prefix: cluster.prefix, env: pki.env(name), timeoutMs: 60_000 });

const authCommands = [['auth', 'setup'], ['auth', 'add-node', 's1'], ['auth', 'add-user', 'titan-operator', '--role', 'operator']];

beforeAll(async () => {
  await requireDocker();
  pki = makePki(['s1', 's2']);
  etcd = await startEtcd({ name: 'secure', tls: { pkiDir: pki.dir, clientCertAuth: true } });
  cluster = new ProcessCluster(etcd);
  for (const args of authCommands) {
    const res = await cliAs('root', ...args);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/: created/);
  }
});

afterAll(async () => {
  await cluster?.stop();
  await etcd?.stop();
  pki?.remove();
});

describe('a secure cluster', () => {
  it('titan auth commands change nothing when run again', async () => {
    for (const args of authCommands) {
      const res = await cliAs('root', ...args);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).not.toMatch(/created|updated/);
      expect(res.stdout).toMatch(/unchanged/);
    }
  });

  it('runs a job to Succeeded with each component as its own etcd user, titan logs shows it, and a node can write nothing but its own keys', async () => {
    // The worker first, on a prefix no master has written yet: its role is enough to start.
    cluster.startWorker('s1', pki.flags('titan-node-s1'));
    let last: CliResult | undefined;
    await waitFor('node s1 registered', async () => {
      last = await cliAs('titan-operator', 'nodes', '-o', 'json');
      return last.code === 0 && last.stdout.includes('"s1"');
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${last?.stderr ?? ''}\n${cluster.logs()}`);
    });
    cluster.startMaster(pki.flags('titan-master'));
    const submitted = await cliAs('titan-operator', 'submit', '--image', TEST_IMAGE, '--cmd', 'echo hello over tls', '--wait');
    expect(submitted.code, `${submitted.stderr}\n${cluster.logs()}`).toBe(0);
    const id = submitted.stdout.trim();
    const status = await cliAs('titan-operator', 'status', id, '-o', 'json');
    expect(JSON.parse(status.stdout)).toMatchObject({ status: 'Succeeded', node: 's1' });
    const logs = await cliAs('titan-operator', 'logs', id);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toBe('hello over tls\n');
    // The node's own certificate cannot do an operator's work.
    const denied = await cliAs('titan-node-s1', 'queue', 'create', 'mine');
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^error: etcd denied user titan-node-s1 \(client certificate\)/);

    // Straight to etcd with node s1's credentials: only s1's own keys can be written.
    const node = asUser('titan-node-s1');
    const { keys } = cluster.store;
    try {
      const forbidden = [
        keys.job(id), // rewrite a job: another node would run the new command
        keys.job('1m8tzzzzzzzzz'),
        keys.node('s2'),
        keys.report('s2', id),
        keys.logChunk('s2', id, 1, 0),
        keys.assignment('s1', id), // its assignments: read only
        keys.assignment('s2', id),
        keys.queue('mine'),
        keys.leader(),
        keys.layout(),
      ];
      for (const key of forbidden) {
        const err = await node.put(key).value('x').then(() => undefined, (e: unknown) => e);
        expect(err, key).toBeInstanceOf(EtcdPermissionDeniedError);
      }
      // Nor can it read job records or other nodes' output.
      for (const key of [keys.job(id), keys.logChunk('s2', id, 1, 0)]) {
        expect(await node.get(key).then(() => undefined, (e: unknown) => e), key).toBeInstanceOf(EtcdPermissionDeniedError);
      }
      // Its own prefixes it can write.
      await node.put(keys.report('s1', 'probe')).value('x');
      await node.delete().key(keys.report('s1', 'probe'));
    } finally {
      node.close();
    }
    const after = await cliAs('titan-operator', 'status', id, '-o', 'json');
    expect(JSON.parse(after.stdout)).toMatchObject({ status: 'Succeeded', command: ['/bin/sh', '-c', 'echo hello over tls'] });
  }, 120_000);

  it("a worker with another node's certificate refuses to start", async () => {
    const worker = startProcess('worker s2', BIN.worker, ['--node-id', 's2', '--docker', 'off', ...pki.flags('titan-node-s1')], {
      TITAN_ENDPOINTS: etcd.endpoints,
      TITAN_PREFIX: cluster.prefix,
    });
    expect(await worker.exited, worker.output()).toBe(2);
    expect(worker.output()).toMatch(
      /error: --etcd-cert: the certificate is for "titan-node-s1" but this worker is --node-id s2 \(expected CN titan-node-s2\)/,
    );
  });
});
