import net from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { startMasterApi } from '../../internal/api/master-api.js';
import type { ApiServer } from '../../internal/api/server.js';
import { planToken, type TokenFlags } from '../../internal/cli/tokens.js';
import type { Master } from '../../internal/master/index.js';
import { Store } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { randomPrefix } from '../harness/wait.js';
import { startMaster, startTestWorker, waitFor, type TestWorker } from '../worker/helpers.js';

/** One cluster for a file of CLI tests that run each command through etcd and through the API. */
export interface CliCluster {
  readonly etcd: EtcdServer;
  readonly prefix: string;
  readonly store: Store;
  /** A shell worker: 4 CPUs, 8 GiB. */
  readonly worker: TestWorker;
  readonly master: Master;
  /** The master's HTTP API. */
  readonly api: ApiServer;
  /** Where runs through the API point TITAN_ENDPOINTS: a listener that counts (and drops) every connection, so any etcd access shows. */
  readonly noEtcdAddress: string;
  /** Connections that listener has seen. */
  readonly etcdAttempts: number;
  /** A token stored in etcd, as `titan token create` makes it; resolves once the API's cache has it. */
  token(flags: TokenFlags): Promise<string>;
}

/** Starts the cluster before the file's tests and stops it after them. Call at the top of a file. */
export function cliClusterSuite(name: string): CliCluster {
  // Each part kept as soon as it runs, so one that fails to start does not leave the others running.
  let etcd: EtcdServer | undefined;
  let prefix: string | undefined;
  let store: Store | undefined;
  let noEtcd: net.Server | undefined;
  let noEtcdAddress: string | undefined;
  let worker: TestWorker | undefined;
  let master: Master | undefined;
  let api: ApiServer | undefined;
  let attempts = 0;
  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the cluster is not started yet');
    return value;
  };
  beforeAll(async () => {
    etcd = await startEtcd({ name });
    prefix = randomPrefix();
    store = new Store({ endpoints: [etcd.endpoints], prefix });
    const listener = net.createServer((socket) => {
      attempts++;
      socket.destroy();
    });
    noEtcd = listener;
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    noEtcdAddress = `127.0.0.1:${(listener.address() as net.AddressInfo).port}`;
    worker = await startTestWorker(etcd.endpoints, { prefix, executors: 'shell', docker: 'off', cpu: '4', memory: '8Gi' });
    master = await startMaster(etcd.endpoints, prefix);
    api = await startMasterApi(master, { listen: '127.0.0.1:0' }, pino({ level: 'silent' }));
  }, 120_000);
  afterAll(async () => {
    await api?.close();
    await master?.stop();
    await worker?.stop();
    store?.close();
    await new Promise((resolve) => noEtcd?.close(resolve));
    await etcd?.stop();
  });
  return {
    get etcd() { return need(etcd); },
    get prefix() { return need(prefix); },
    get store() { return need(store); },
    get worker() { return need(worker); },
    get master() { return need(master); },
    get api() { return need(api); },
    get noEtcdAddress() { return need(noEtcdAddress); },
    get etcdAttempts() { return attempts; },
    async token(flags) {
      const { token: record, secret } = planToken(flags);
      await need(store).createToken(record);
      const server = need(api);
      await waitFor(`token ${record.id} in the API's cache`, async () => server.cache.tokens.has(record.id) || undefined);
      return secret;
    },
  };
}
