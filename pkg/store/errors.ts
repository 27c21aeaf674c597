import { isBrokenCircuitError } from 'cockatiel';
import {
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  EtcdUserNotFoundError,
  GRPCInvalidArgumentError,
  GRPCOutOfRangeError,
  GRPCResourceExhastedError,
  GRPCUnauthenticatedError,
} from 'etcd3';
import { TitanError } from '../model/errors.js';
import { failedRequest, isUnreachableError, type FailedRequest } from './client.js';

/** Reads: a denied one lacks a read grant, anything else a readwrite one. */
const READ_METHODS = new Set(['range', 'watch']);

/**
 * Turns a raw etcd/gRPC failure into one line a user can act on. Classified
 * by etcd3's typed errors (from the gRPC status code); an error that is no
 * connectivity problem is never reported as "cannot reach etcd".
 */
export function storeError(err: unknown, endpoints: readonly string[]): TitanError {
  if (err instanceof TitanError) return err;
  const request = failedRequest(err);
  const where = (request?.endpoints ?? endpoints).join(',');
  const detail = firstLine(err);
  const who = request?.identity ?? 'this client';

  if (err instanceof EtcdPermissionDeniedError) {
    const keys = request && request.keys.length > 0 ? request.keys.join(', ') : 'the key';
    const access = request && READ_METHODS.has(request.method) ? 'read' : 'readwrite';
    return new TitanError(
      'PermissionDenied',
      `etcd denied ${who} ${request ? `${request.service}.${request.method} ` : ''}on ${keys}: the user's roles need ${access} on it (titan auth setup grants Titan's roles; see docs/security.md)`,
      { cause: err },
    );
  }
  if (err instanceof EtcdAuthenticationFailedError || err instanceof EtcdUserNotFoundError) {
    return new TitanError(
      'Unauthenticated',
      `etcd at ${where} rejected ${who}: wrong user name or password; check --etcd-user and TITAN_ETCD_PASSWORD or --etcd-password-file`,
      { cause: err },
    );
  }
  if (err instanceof GRPCUnauthenticatedError || err instanceof EtcdInvalidAuthTokenError) {
    return new TitanError(
      'Unauthenticated',
      `etcd at ${where} did not accept the credentials of ${who} (${detail}); check --etcd-user/--etcd-cert`,
      { cause: err },
    );
  }
  if (err instanceof GRPCResourceExhastedError) {
    return new TitanError('ResourceExhausted', resourceExhausted(request, detail), { cause: err });
  }
  if (isUnreachableError(err)) {
    return new TitanError(
      'Unavailable',
      request?.diagnosis?.message ?? `cannot reach etcd at ${where} (${detail}); check --endpoints or TITAN_ENDPOINTS`,
      { cause: err },
    );
  }
  if (err instanceof GRPCInvalidArgumentError && request?.identity.startsWith('no user')) {
    // etcd with auth on answers an anonymous client "user name is empty" (InvalidArgument).
    return new TitanError(
      'Unauthenticated',
      `etcd at ${where} rejected the request of an anonymous client (${detail}); if etcd has auth enabled, give a client certificate (--etcd-cert/--etcd-key) or --etcd-user`,
      { cause: err },
    );
  }
  return new TitanError('Internal', `etcd request failed: ${detail}`, { cause: err });
}

/** RESOURCE_EXHAUSTED: a read's reply over gRPC's message limit, or a write refused by the NOSPACE alarm. */
function resourceExhausted(request: FailedRequest | undefined, detail: string): string {
  const keys = request && request.keys.length > 0 ? ` under ${request.keys[0]}` : '';
  if (request && READ_METHODS.has(request.method)) {
    return `etcd's reply to a read${keys} is over the gRPC message limit (${detail}); read fewer or smaller records at a time`;
  }
  return `etcd is out of space (${detail}): its database reached --quota-backend-bytes and it refuses writes (NOSPACE alarm); remove old jobs, compact and defragment etcd, then run etcdctl alarm disarm`;
}

function firstLine(err: unknown): string {
  if (isBrokenCircuitError(err)) return 'circuit breaker open after repeated failures';
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0];
}

/** Whether a store error will not go away by waiting: TLS or credentials are wrong, or a role lacks a grant. */
export function isConfigurationError(err: unknown): boolean {
  if (!(err instanceof TitanError)) return false;
  if (err.code === 'Unauthenticated' || err.code === 'PermissionDenied') return true;
  return err.code === 'Unavailable' && failedRequest(err.cause)?.diagnosis?.kind === 'transport';
}

/**
 * A failure that waiting may cure: no etcd answered (UNAVAILABLE,
 * DEADLINE_EXCEEDED, the circuit breaker open), raw or as storeError made it.
 * The classifier of retries against etcd (pkg/concurrency/call-retry.ts).
 */
export function isTransientStoreError(err: unknown): boolean {
  return isUnreachableError(err) || (err instanceof TitanError && err.code === 'Unavailable');
}

/**
 * Why etcd refused a revision: older than its last compaction, or newer
 * than its head. A read gets gRPC OUT_OF_RANGE for both; a watch is cancelled
 * with a reason etcd3 turns into a plain EtcdError. Only etcd's own text
 * (mvcc's ErrCompacted, ErrFutureRev) tells which, so it is read here and
 * nowhere else.
 */
function revisionRefusal(err: unknown): 'compacted' | 'future' | undefined {
  // The etcd error itself, or the one a TitanError (storeError) wraps.
  const raw = err instanceof GRPCOutOfRangeError || err instanceof EtcdError ? err : err instanceof Error ? err.cause : undefined;
  if (!(raw instanceof GRPCOutOfRangeError || raw instanceof EtcdError)) return undefined;
  if (/required revision has been compacted/i.test(raw.message)) return 'compacted';
  if (/required revision is a future revision/i.test(raw.message)) return 'future';
  // OUT_OF_RANGE with some other text: a revision refused all the same, most likely compacted.
  return raw instanceof GRPCOutOfRangeError ? 'compacted' : undefined;
}

/** etcd refused a read or watch at a revision older than its last compaction. */
export function isCompactedError(err: unknown): boolean {
  return revisionRefusal(err) === 'compacted';
}

/** etcd refused a read at a revision it has not reached yet. */
export function isFutureRevisionError(err: unknown): boolean {
  return revisionRefusal(err) === 'future';
}
