import type { Logger } from 'pino';
import { connectEtcd, type EtcdConnection } from './client.js';
import { isConfigurationError, storeError } from './errors.js';
import { Keys } from './keys.js';

/**
 * One read at start-up of a key every Titan role may read (the layout key),
 * so a daemon with a wrong CA, certificate, password or role exits at once
 * with the reason, instead of retrying forever. An etcd that is only down
 * is waited for as before: it is logged once and start-up goes on.
 */
export async function checkEtcdAccess(connection: EtcdConnection, prefix: string, logger: Logger, timeoutMs = 3000): Promise<void> {
  const client = connectEtcd({ ...connection, callTimeoutMs: timeoutMs, dialTimeoutMs: timeoutMs });
  try {
    await client.get(new Keys(prefix).layout()).exists();
  } catch (raw) {
    const err = storeError(raw, connection.endpoints);
    if (isConfigurationError(err)) throw err;
    logger.warn({ err }, `${err.message}; waiting for etcd`);
  } finally {
    client.close();
  }
}
