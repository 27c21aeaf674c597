import type { Logger } from 'pino';
import type { Daemon } from '../../pkg/process/daemon.js';
import { Store } from '../../pkg/store/store.js';
import type { Master } from '../master/master.js';
import type { MasterConfig } from '../master/config.js';
import { startApiServer, type ApiServer } from './server.js';

export type ApiConfig = NonNullable<MasterConfig['api']>;

/**
 * Serves the API of a started master. The API has its own etcd connection,
 * so its watches and reads never queue behind the scheduler's. Closing it
 * closes that connection too.
 */
export async function startMasterApi(master: Master, api: ApiConfig, logger: Logger): Promise<ApiServer> {
  const store = new Store({ ...master.config.etcd, prefix: master.config.prefix });
  try {
    const server = await startApiServer({
      listen: api.listen,
      tls: api.tls,
      store,
      logger,
      isLeader: () => master.isLeader(),
      isSynced: () => master.isSynced(),
      metrics: { contentType: master.metrics.registry.contentType, text: () => master.metrics.registry.metrics() },
    });
    return { ...server, close: () => server.close().finally(() => store.close()) };
  } catch (err) {
    store.close();
    throw err;
  }
}

/** A master that also serves the API: it starts once the master has synced and stops first, so no call sees a master going away. */
export function withApi(master: Master, api: ApiConfig, logger: Logger): Daemon {
  let server: ApiServer | undefined;
  return {
    async start() {
      await master.start();
      server = await startMasterApi(master, api, logger);
      logger.info({ url: server.url }, `API listening on ${server.url} (dashboard ${server.url}/ui/)`);
    },
    async stop() {
      await server?.close();
      await master.stop();
    },
  };
}
