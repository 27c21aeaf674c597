import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen } from 'cockatiel';
import { Etcd3, isRecoverableError } from 'etcd3';
import { guardWatchResponses } from './watch-guard.js';

guardWatchResponses();

export interface ConnectOptions {
  /** host:port or http://host:port, one per etcd member. */
  endpoints: string[];
  /** Deadline of every unary call. */
  callTimeoutMs?: number;
  dialTimeoutMs?: number;
}

export function normalizeEndpoints(endpoints: string[]): string[] {
  return endpoints
    .flatMap((e) => e.split(','))
    .map((e) => e.trim())
    .filter((e) => e.length > 0)
    .map((e) => (/^https?:\/\//.test(e) ? e : `http://${e}`));
}

/**
 * An etcd client whose unary calls all carry a deadline, so a dead cluster
 * fails fast instead of hanging. The per-host circuit breaker re-probes after
 * 1 s (the library's 5 s would keep a worker away from a restarted etcd
 * for most of a lease TTL) and watches reconnect within 2 s.
 */
export function connectEtcd(options: ConnectOptions): Etcd3 {
  const callTimeoutMs = options.callTimeoutMs ?? 5000;
  return new Etcd3({
    hosts: normalizeEndpoints(options.endpoints),
    dialTimeout: options.dialTimeoutMs ?? 3000,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }).next(),
    },
  });
}
