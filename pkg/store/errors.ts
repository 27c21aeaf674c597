import { TitanError } from '../model/errors.js';

const UNAVAILABLE = /UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED|No connection|unavailable|Deadline|GRPCConnectFailed|circuit|connect/i;

/** Turns a raw etcd/gRPC failure into an error a user can act on. */
export function storeError(err: unknown, endpoints: readonly string[]): TitanError {
  if (err instanceof TitanError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (UNAVAILABLE.test(message) || (err instanceof Error && UNAVAILABLE.test(err.name))) {
    return new TitanError(
      'Unavailable',
      `cannot reach etcd at ${endpoints.join(',')} (${message.split('\n')[0]}); check --endpoints or TITAN_ENDPOINTS`,
      { cause: err },
    );
  }
  return new TitanError('Internal', `etcd request failed: ${message}`, { cause: err });
}

/** etcd refused a read at a revision older than its last compaction. */
export function isCompactedError(err: unknown): boolean {
  return /required revision has been compacted/i.test(err instanceof Error ? err.message : String(err));
}
