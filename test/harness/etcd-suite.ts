import { afterAll, beforeAll, beforeEach } from 'vitest';
import { Store } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from './etcd.js';
import { randomPrefix } from './wait.js';

/** What a test file works with: its own etcd, and per test a fresh prefix and a store on it. */
export interface EtcdSuite {
  etcd: EtcdServer;
  prefix: string;
  store: Store;
}

/** Starts etcd for the file and gives each test its own prefix and store. Call at the top of the file. */
export function etcdSuite(name: string): EtcdSuite {
  const ctx = {} as EtcdSuite;
  beforeAll(async () => {
    ctx.etcd = await startEtcd({ name });
  });
  afterAll(async () => {
    ctx.store?.close();
    await ctx.etcd?.stop();
  });
  beforeEach(() => {
    ctx.store?.close();
    ctx.prefix = randomPrefix();
    ctx.store = new Store({ endpoints: [ctx.etcd.endpoints], prefix: ctx.prefix });
  });
  return ctx;
}
