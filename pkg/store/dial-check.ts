import net from 'node:net';
import tls from 'node:tls';
import type { EtcdTls } from './client.js';

/**
 * Why an etcd endpoint cannot be used, found by dialling it the way gRPC
 * would (TCP, then TLS) and classifying the socket's error code: gRPC
 * reports all of these as one UNAVAILABLE, which tells a user nothing.
 * Undefined when the dial works (the failure is elsewhere) or tells nothing.
 */
export interface Diagnosis {
  /** unreachable: nothing answers (it may come back); transport: TLS is misconfigured (it will not fix itself). */
  kind: 'unreachable' | 'transport';
  message: string;
}

export async function diagnoseEndpoint(endpoint: string, tlsConfig: EtcdTls | undefined, timeoutMs = 1000): Promise<Diagnosis | undefined> {
  const message = await describeEndpoint(endpoint, tlsConfig, timeoutMs);
  if (message === undefined) return undefined;
  return { kind: message.startsWith('cannot reach') ? 'unreachable' : 'transport', message };
}

async function describeEndpoint(endpoint: string, tlsConfig: EtcdTls | undefined, timeoutMs: number): Promise<string | undefined> {
  const url = new URL(endpoint);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const tcp = await dialTcp(host, port, timeoutMs);
  if (tcp !== undefined) {
    return `cannot reach etcd at ${endpoint} (${tcp}): is etcd running there? check --endpoints or TITAN_ENDPOINTS`;
  }
  if (url.protocol === 'https:') return diagnoseTls(endpoint, host, port, tlsConfig, timeoutMs);
  // Plain http to a TLS etcd: gRPC only sees a broken stream; a TLS hello is answered.
  const answer = await dialTls(host, port, { rejectUnauthorized: false }, timeoutMs);
  if (answer === 'ok' || (answer !== 'timeout' && answer.startsWith('ERR_SSL_') && !NOT_TLS.has(answer))) {
    return `etcd at ${endpoint} speaks TLS: use https://${url.host} and give its CA with --etcd-ca (and a client certificate with --etcd-cert/--etcd-key if it asks for one)`;
  }
  return undefined;
}

/** Answers that mean the peer is no TLS server. */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST', 'ECONNRESET', 'EPIPE']);
const UNTRUSTED_SERVER = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
]);
const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
]);

async function diagnoseTls(endpoint: string, host: string, port: number, config: EtcdTls | undefined, timeoutMs: number): Promise<string | undefined> {
  const answer = await dialTls(
    host,
    port,
    {
      ...(config?.ca ? { ca: config.ca } : {}),
      ...(config?.cert && config.key ? { cert: config.cert, key: config.key } : {}),
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
    },
    timeoutMs,
  );
  if (answer === 'ok' || answer === 'timeout') return undefined;
  if (NOT_TLS.has(answer)) {
    return `etcd at ${endpoint} does not speak TLS (${answer}): use http:// without --etcd-ca/--etcd-cert/--etcd-key, or start etcd with --cert-file/--key-file`;
  }
  if (UNTRUSTED_SERVER.has(answer)) {
    return config?.ca
      ? `etcd's server certificate at ${endpoint} is not signed by the CA given with --etcd-ca (${answer}): give the CA that signed etcd's --cert-file`
      : `etcd's server certificate at ${endpoint} is not signed by a system CA (${answer}): give its CA with --etcd-ca`;
  }
  if (answer === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `etcd's server certificate does not name ${host} (${answer}): connect by a name or address in its subjectAltName, or reissue it`;
  }
  if (answer === 'CERT_HAS_EXPIRED' || answer === 'CERT_NOT_YET_VALID') {
    return `etcd's server certificate at ${endpoint} is not valid now (${answer}): renew it`;
  }
  if (CLIENT_CERT_REFUSED.has(answer)) {
    return config?.cert
      ? `etcd at ${endpoint} rejected the client certificate${config.commonName ? ` (CN ${config.commonName})` : ''} (${answer}): use one signed by etcd's --trusted-ca-file and still valid`
      : `etcd at ${endpoint} requires a client certificate (${answer}): give --etcd-cert and --etcd-key (env TITAN_ETCD_CERT, TITAN_ETCD_KEY)`;
  }
  return `TLS with etcd at ${endpoint} failed (${answer}): check --etcd-ca, --etcd-cert and --etcd-key`;
}

function dialTcp(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: string | undefined): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs} ms`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'error'));
  });
}

/**
 * A TLS handshake, capped at TLS 1.2: there the server checks a client
 * certificate inside the handshake, so a refused one fails it (with TLS 1.3
 * the refusal only arrives after it). 'ok', 'timeout' or the error code.
 */
function dialTls(host: string, port: number, options: tls.ConnectionOptions, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'], ...options });
    const done = (result: string): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done('timeout'));
    socket.once('secureConnect', () => done('ok'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'error'));
  });
}
