import type { Logger } from 'pino';
import type { Daemon } from '../../pkg/process/daemon.js';
import { Store } from '../../pkg/store/store.js';
import type { Master } from '../master/master.js';
import type { MasterConfig } from '../master/config.js';
import { startApiServer, type ApiServer } from './server.js';

/**
 * A master that also serves the API. The API has its own etcd connection,
 * so its watches and reads never queue behind the scheduler's; it starts
 * once the master has synced and stops first, so no call sees a master
 * going away.
 */
export function withApi(master: Master, api: NonNullable<MasterConfig['api']>, logger: Logger): Daemon {
  let server: ApiServer | undefined;
  let store: Store | undefined;
  return {
    async start() {
      await master.start();
      store = new Store({ ...master.config.etcd, prefix: master.config.prefix });
      server = await startApiServer({
        listen: api.listen,
        tls: api.tls,
        store,
        logger,
        isLeader: () => master.isLeader(),
      });
      logger.info({ url: server.url }, `API listening on ${server.url} (dashboard ${server.url}/ui/)`);
    },
    async stop() {
      await server?.close();
      store?.close();
      await master.stop();
    },
  };
}
