import pino from 'pino';
import { afterEach } from 'vitest';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../internal/api/server.js';
import { planToken, type TokenFlags } from '../../internal/cli/tokens.js';
import { Store } from '../../pkg/store/index.js';
import type { EtcdSuite } from '../harness/etcd-suite.js';
import { waitFor } from '../harness/wait.js';

export interface ApiHarness {
  /** An API server on the suite's etcd and prefix (or another prefix), with its own connection as a master's. */
  start(options?: Partial<Omit<ApiServerOptions, 'store' | 'logger' | 'listen' | 'isLeader'>> & { prefix?: string }): Promise<ApiServer>;
  /** A token stored in etcd, as `titan token create` makes it; resolves once the server's cache has it. */
  token(flags: TokenFlags): Promise<string>;
  readonly server: ApiServer;
}

/** One API server per test, closed after it. Call at the top of a file, after etcdSuite. */
export function apiHarness(suite: EtcdSuite): ApiHarness {
  let server: ApiServer | undefined;
  let apiStore: Store | undefined;
  let tokenStore: Store | undefined;
  afterEach(async () => {
    await server?.close().catch(() => undefined); // a test may have closed it already
    apiStore?.close();
    tokenStore?.close();
    server = undefined;
    tokenStore = undefined;
  });
  return {
    async start(options = {}) {
      const { prefix, ...rest } = options;
      apiStore = new Store({ endpoints: [suite.etcd.endpoints], prefix: prefix ?? suite.prefix });
      server = await startApiServer({ listen: '127.0.0.1:0', store: apiStore, logger: pino({ level: 'silent' }), isLeader: () => false, ...rest });
      return server;
    },
    async token(flags) {
      if (!server || !apiStore) throw new Error('start the server first');
      const { token: record, secret } = planToken(flags);
      tokenStore ??= new Store({ endpoints: [suite.etcd.endpoints], prefix: apiStore.keys.root });
      await tokenStore.createToken(record);
      const api = server;
      await waitFor('the API to see the new token', () => api.cache.tokens.has(record.id));
      return secret;
    },
    get server() {
      if (!server) throw new Error('start the server first');
      return server;
    },
  };
}
