import { circuitBreaker, ConsecutiveBreaker, handleWhen } from 'cockatiel';
import { isBrokenCircuitError } from 'cockatiel';
import {
  castGrpcErrorMessage,
  Etcd3,
  EtcdInvalidAuthTokenError,
  GRPCDeadlineExceededError,
  GRPCResourceExhastedError,
  GRPCUnavailableError,
  isRecoverableError,
  type IOptions,
} from 'etcd3';
import { callBackoff } from '../concurrency/call-retry.js';
import { diagnoseEndpoint, type Diagnosis } from './dial-check.js';
import { guardWatchResponses } from './watch-guard.js';

guardWatchResponses();

/** TLS material, PEM, read and checked by pkg/config (resolveEtcdConnection). */
export interface EtcdTls {
  /** CA of the server certificate; absent = the system's roots. */
  ca?: Buffer;
  /** Client certificate and its key: the etcd user (CN) with --client-cert-auth. */
  cert?: Buffer;
  key?: Buffer;
  /** The client certificate's CN, for messages and the worker's identity check. */
  commonName?: string;
}

/** etcd password authentication. */
export interface EtcdAuth {
  user: string;
  password: string;
}

/** Where etcd is and how to prove who we are: one value for master, worker and CLI. */
export interface EtcdConnection {
  /** host:port or http(s)://host:port, one per etcd member. */
  endpoints: string[];
  /** Present = TLS (https). */
  tls?: EtcdTls;
  auth?: EtcdAuth;
}

export interface ConnectOptions extends EtcdConnection {
  /** Deadline of every unary call. */
  callTimeoutMs?: number;
  dialTimeoutMs?: number;
}

/** Bare host:port entries get http://, or https:// when `tls` is set. */
export function normalizeEndpoints(endpoints: string[], tls = false): string[] {
  return endpoints
    .flatMap((e) => e.split(','))
    .map((e) => e.trim())
    .filter((e) => e.length > 0)
    .map((e) => (/^https?:\/\//.test(e) ? e : `${tls ? 'https' : 'http'}://${e}`));
}

/** The identity a connection presents, for messages: `user alice`, `certificate CN titan-master`, or anonymous. */
export function describeIdentity(connection: Pick<EtcdConnection, 'tls' | 'auth'>): string {
  if (connection.auth) return `user ${connection.auth.user}`;
  if (connection.tls?.commonName !== undefined) return `user ${connection.tls.commonName} (client certificate)`;
  return 'no user (anonymous)';
}

/** Largest reply the client takes (gRPC's default is 4 MiB). */
export const MAX_REPLY_BYTES = 32 * 1024 * 1024;

function isConnectionFailure(err: Error): boolean {
  return isRecoverableError(err) && !(err instanceof GRPCResourceExhastedError);
}

/** The deadline of every unary etcd call, unless ConnectOptions.callTimeoutMs says otherwise. */
export const DEFAULT_CALL_TIMEOUT_MS = 5000;

/**
 * An etcd client whose unary calls all carry a deadline, so a dead cluster
 * fails fast instead of hanging. The per-host circuit breaker re-probes after
 * 1 s (the library's 5 s would keep a worker away from a restarted etcd
 * for most of a lease TTL) and watches reconnect within 2 s.
 */
export function connectEtcd(options: ConnectOptions): Etcd3 {
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const tls = options.tls;
  const etcdOptions: IOptions = {
    hosts: normalizeEndpoints(options.endpoints, tls !== undefined),
    dialTimeout: options.dialTimeoutMs ?? 3000,
    // Reads are paged by bytes (Store.scanKeyValues, PAGE_BYTES); the headroom is for a page of records larger than planned.
    grpcOptions: { 'grpc.max_receive_message_length': MAX_REPLY_BYTES },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    faultHandling: {
      // Only failures of the connection open the breaker: etcd3 counts RESOURCE_EXHAUSTED (a reply over the
      // message limit, or etcd out of space) as recoverable, and a too-large read would then cut every call off.
      host: () => circuitBreaker(handleWhen(isConnectionFailure), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      watchBackoff: callBackoff({ initialDelayMs: 100, maxDelayMs: 2000 }).next(),
    },
  };
  if (tls) {
    silenceIpServerNameWarning();
    // etcd3 passes these to grpc.credentials.createSsl; a missing CA means the system roots.
    etcdOptions.credentials = {
      rootCertificate: tls.ca as Buffer,
      ...(tls.cert && tls.key ? { certChain: tls.cert, privateKey: tls.key } : {}),
    };
  }
  if (options.auth) etcdOptions.auth = { username: options.auth.user, password: options.auth.password };
  const client = new Etcd3(etcdOptions);
  annotateFailures(client, { ...options, endpoints: etcdOptions.hosts as string[] });
  if (options.auth) renewTokenOfWatches(client);
  return client;
}

interface WatchManagerInternals {
  state: number;
  stream: unknown;
  handleCancelResponse(watcher: unknown, res: { cancel_reason?: string }): void;
  handleError(err: Error): void;
}

/** etcd3's WatchManager state while its stream is open. */
const WATCH_CONNECTED = 2;

/**
 * etcd3 sends the password token once, when the watch stream opens, and
 * renews it only for unary calls. Once the token expires or etcd restarts
 * (tokens live in memory), every watch created on that stream is cancelled
 * with "invalid auth token" and the stream itself stays up, so a re-created
 * watch fails the same way, forever. On such a cancel the token is dropped
 * and the stream closed: the next watch opens a new one with a new token.
 */
function renewTokenOfWatches(client: Etcd3): void {
  const internals = client as unknown as { watchManager: WatchManagerInternals; pool: { authenticator: { invalidateMetadata(): void } } };
  const manager = internals.watchManager;
  const cancel = manager.handleCancelResponse.bind(manager);
  manager.handleCancelResponse = (watcher, res) => {
    cancel(watcher, res);
    const err = castGrpcErrorMessage(`Watcher canceled: ${res.cancel_reason ?? ''}`);
    if (!(err instanceof EtcdInvalidAuthTokenError)) return;
    internals.pool.authenticator.invalidateMetadata();
    const stream = manager.stream;
    // Not from inside the stream's data handler, which still uses the stream after this returns.
    setImmediate(() => {
      if (manager.state === WATCH_CONNECTED && manager.stream === stream) manager.handleError(err);
    });
  };
}

let ipServerNameSilenced = false;

/**
 * grpc-js sends an IP endpoint's address as the TLS server name, which Node
 * flags once per process (DEP0123) on stderr, breaking the CLI's one-line
 * errors. Harmless (the name is ignored), so only that warning is dropped.
 */
function silenceIpServerNameWarning(): void {
  if (ipServerNameSilenced) return;
  ipServerNameSilenced = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

/** What a failed etcd call was, for storeError's message. */
export interface FailedRequest {
  service: string;
  method: string;
  /** Keys the request named (at most a few). */
  keys: string[];
  /** Who we were: `user titan-node-n1 (client certificate)`. */
  identity: string;
  endpoints: string[];
  /** Why the endpoints cannot be used, when a dial found out (see dial-check.ts). */
  diagnosis?: Diagnosis;
}

const failures = new WeakMap<object, FailedRequest>();

/** The request an error of an etcd call came from, when it came from one. */
export function failedRequest(err: unknown): FailedRequest | undefined {
  return typeof err === 'object' && err !== null ? failures.get(err) : undefined;
}

/** Errors that mean no etcd answered: the dial check says why. */
export function isUnreachableError(err: unknown): boolean {
  return err instanceof GRPCUnavailableError || err instanceof GRPCDeadlineExceededError || isBrokenCircuitError(err);
}

interface ExecPool {
  exec(service: string, method: string, payload: unknown, options?: unknown): Promise<unknown>;
}

/**
 * Every unary call's error remembers its request (keys, identity), and an
 * unreachable etcd is dialled once to say why, so one line can tell the user
 * what is wrong. etcd3 has no hook for this: its pool's exec is wrapped.
 */
function annotateFailures(client: Etcd3, connection: EtcdConnection): void {
  const pool = (client as unknown as { pool: ExecPool }).pool;
  const exec = pool.exec.bind(pool);
  let lastDiagnosis: { at: number; text: Promise<Diagnosis | undefined> } | undefined;
  const diagnose = (): Promise<Diagnosis | undefined> => {
    // One dial per second at most: a long outage fails many calls.
    if (!lastDiagnosis || Date.now() - lastDiagnosis.at > 1000) {
      lastDiagnosis = { at: Date.now(), text: firstDiagnosis(connection) };
    }
    return lastDiagnosis.text;
  };
  // etcd3 retries a call whose token is invalid by calling exec again from inside the host's circuit
  // breaker. When that call is the breaker's half-open test (the first after an outage; an etcd restart
  // also drops every token), the retry waits for the test, i.e. for itself, and every later call and
  // watch stream of the client waits behind it, for good. etcd3 makes that retry right after dropping
  // the token, in the same tick: such a call ends the test at once, and is made again from here.
  const authenticator = (client as unknown as { pool: { authenticator: { invalidateMetadata(): void } } }).pool.authenticator;
  const invalidate = authenticator.invalidateMetadata.bind(authenticator);
  let tokenDropped = false;
  authenticator.invalidateMetadata = () => {
    invalidate();
    tokenDropped = true;
    queueMicrotask(() => (tokenDropped = false));
  };
  pool.exec = async (service, method, payload, options) => {
    if (tokenDropped) {
      tokenDropped = false;
      throw new TokenRetry();
    }
    for (let attempt = 0; ; attempt++) {
      try {
        return await exec(service, method, payload, options);
      } catch (err) {
        if (err instanceof TokenRetry && attempt < TOKEN_RETRIES) continue;
        if (typeof err === 'object' && err !== null && !failures.has(err)) {
          const request: FailedRequest = {
            service,
            method,
            keys: requestKeys(payload),
            identity: describeIdentity(connection),
            endpoints: connection.endpoints,
          };
          failures.set(err, request);
          if (isUnreachableError(err)) request.diagnosis = await diagnose();
        }
        throw err;
      }
    }
  };
}

/** How often one call is made again for an invalid token (etcd3 itself has no bound). */
const TOKEN_RETRIES = 3;

/** Thrown by etcd3's nested token retry, which the outer exec makes again. */
class TokenRetry extends Error {
  constructor() {
    super('etcd auth token renewed; call made again');
    this.name = 'TokenRetry';
  }
}

async function firstDiagnosis(connection: EtcdConnection): Promise<Diagnosis | undefined> {
  const found = await Promise.all(connection.endpoints.map((e) => diagnoseEndpoint(e, connection.tls).catch(() => undefined)));
  // A misconfiguration says more than one member being down.
  return found.find((d) => d?.kind === 'transport') ?? found.find((d) => d !== undefined);
}

type KeyedRequest = { key?: unknown };
type TxnRequest = { compare?: KeyedRequest[]; success?: Record<string, KeyedRequest | undefined>[]; failure?: Record<string, KeyedRequest | undefined>[] };

/** The keys a KV request names: its key, or a transaction's compares and operations. */
function requestKeys(payload: unknown): string[] {
  if (typeof payload !== 'object' || payload === null) return [];
  const keys: unknown[] = [];
  const single = payload as KeyedRequest;
  if (single.key !== undefined) keys.push(single.key);
  const txn = payload as TxnRequest;
  for (const c of txn.compare ?? []) keys.push(c.key);
  for (const op of [...(txn.success ?? []), ...(txn.failure ?? [])]) {
    for (const inner of Object.values(op)) if (inner?.key !== undefined) keys.push(inner.key);
  }
  const text = keys.map((k) => (Buffer.isBuffer(k) ? k.toString('utf8') : typeof k === 'string' ? k : '')).filter((k) => k !== '');
  return [...new Set(text)].slice(0, 3);
}
