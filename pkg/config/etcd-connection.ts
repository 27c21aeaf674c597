import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Command } from 'commander';
import { invalidInput } from '../model/errors.js';
import type { EtcdAuth, EtcdConnection, EtcdTls } from '../store/client.js';
import { DEFAULT_ENDPOINTS, parseEndpointList, resolveOption, type LayerValue } from './env.js';

export type { EtcdAuth, EtcdConnection, EtcdTls };

/** The connection flags as commander hands them over (see addEtcdConnectionOptions). */
export interface EtcdConnectionFlags {
  endpoints?: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdUser?: string;
  etcdPasswordFile?: string;
}

/** The connection values of a CLI context: used where neither a flag nor the env gives one. */
export interface EtcdConnectionLayer {
  values: EtcdConnectionFlags & { etcdPassword?: string };
  /** How errors name one of the values, e.g. `etcdCa of context prod`. */
  field(key: keyof EtcdConnectionFlags | 'etcdPassword'): string;
}

/** The CN a master's client certificate carries: its etcd user. */
export const MASTER_USER = 'titan-master';

/** The etcd user (and certificate CN) of a worker node. */
export function nodeUser(nodeId: string): string {
  return `titan-node-${nodeId}`;
}

/**
 * The etcd connection flags of titan, titan-master and titan-worker, defined
 * once. The password has no flag value on purpose: it would show in `ps`.
 */
export function addEtcdConnectionOptions(command: Command): Command {
  return command
    .option('--endpoints <list>', 'etcd endpoints, comma-separated; https:// with TLS (env TITAN_ENDPOINTS; default 127.0.0.1:2379)')
    .option('--etcd-ca <file>', 'CA certificate (PEM) that signed the etcd server certificate; turns TLS on (env TITAN_ETCD_CA)')
    .option('--etcd-cert <file>', 'client certificate (PEM); its CN is the etcd user with --client-cert-auth (env TITAN_ETCD_CERT)')
    .option('--etcd-key <file>', 'private key (PEM) of --etcd-cert (env TITAN_ETCD_KEY)')
    .option('--etcd-user <name>', 'etcd user for password auth; the password comes from TITAN_ETCD_PASSWORD or --etcd-password-file (env TITAN_ETCD_USER)')
    .option('--etcd-password-file <file>', "file holding the etcd user's password (env TITAN_ETCD_PASSWORD_FILE)");
}

function readPem(file: string, field: string): Buffer {
  const path = file.trim();
  if (path === '') throw invalidInput(field, 'must name a file');
  try {
    return fs.readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : code;
    throw invalidInput(field, `cannot read ${path} (${why})`);
  }
}

/** A PEM file read and checked now, so a bad one is reported naming its flag instead of as a TLS failure later. */
export function readCertificate(file: string, field: string): { pem: Buffer; cert: crypto.X509Certificate } {
  const pem = readPem(file, field);
  try {
    return { pem, cert: new crypto.X509Certificate(pem) };
  } catch {
    throw invalidInput(field, `${file.trim()} is not a PEM certificate`);
  }
}

function readPrivateKey(file: string, field: string): { pem: Buffer; key: crypto.KeyObject } {
  const pem = readPem(file, field);
  try {
    return { pem, key: crypto.createPrivateKey(pem) };
  } catch {
    throw invalidInput(field, `${file.trim()} is not a PEM private key (unencrypted)`);
  }
}

/** A secret kept in a file (a password, a token): its content without the final newline; empty is refused. */
export function readSecretFile(file: string, field: string): string {
  const password = readPem(file, field).toString('utf8').replace(/\r?\n$/, '');
  if (password === '') throw invalidInput(field, `${file.trim()} is empty`);
  return password;
}

const asText = (text: string): string => text;

/**
 * Endpoints, TLS material and credentials from flags over TITAN_* env, read
 * and checked here: unreadable or mismatched files and contradictions are
 * InvalidInput naming the flag (exit 2), before any connection is tried.
 */
export function resolveEtcdConnection(
  flags: EtcdConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
  context?: EtcdConnectionLayer,
): EtcdConnection {
  const below = (key: keyof EtcdConnectionFlags): LayerValue | undefined =>
    context === undefined ? undefined : { value: context.values[key], field: context.field(key) };
  const endpoints = resolveOption(flags.endpoints, 'TITAN_ENDPOINTS', DEFAULT_ENDPOINTS, parseEndpointList, env, below('endpoints'));
  const endpointField =
    flags.endpoints !== undefined
      ? '--endpoints'
      : env.TITAN_ENDPOINTS || context?.values.endpoints === undefined
        ? 'TITAN_ENDPOINTS'
        : context.field('endpoints');
  const ca = resolveOption<{ pem: Buffer } | undefined>(flags.etcdCa, 'TITAN_ETCD_CA', undefined, readCertificate, env, below('etcdCa'));
  const cert = resolveOption<{ pem: Buffer; cert: crypto.X509Certificate } | undefined>(
    flags.etcdCert,
    'TITAN_ETCD_CERT',
    undefined,
    readCertificate,
    env,
    below('etcdCert'),
  );
  const key = resolveOption<{ pem: Buffer; key: crypto.KeyObject } | undefined>(flags.etcdKey, 'TITAN_ETCD_KEY', undefined, readPrivateKey, env, below('etcdKey'));
  const user = resolveOption<string | undefined>(flags.etcdUser, 'TITAN_ETCD_USER', undefined, asText, env, below('etcdUser'))?.trim();
  const passwordFromFile = resolveOption<string | undefined>(flags.etcdPasswordFile, 'TITAN_ETCD_PASSWORD_FILE', undefined, readSecretFile, env);

  if (cert && !key) throw invalidInput('--etcd-key', 'is needed with --etcd-cert (the private key of the client certificate)');
  if (key && !cert) throw invalidInput('--etcd-cert', 'is needed with --etcd-key (the client certificate of the key)');
  if (cert && key && !cert.cert.checkPrivateKey(key.key)) {
    throw invalidInput('--etcd-key', 'does not belong to the certificate given with --etcd-cert');
  }

  const tlsWanted = ca !== undefined || cert !== undefined || endpoints.some((e) => e.startsWith('https://'));
  if (tlsWanted) {
    const plain = endpoints.find((e) => e.startsWith('http://'));
    if (plain !== undefined) {
      throw invalidInput(endpointField, `${plain} is plain http but TLS is configured (--etcd-ca/--etcd-cert): use https://${plain.slice('http://'.length)}`);
    }
  }

  const connection: EtcdConnection = { endpoints };
  if (tlsWanted) {
    const tls: EtcdTls = {};
    if (ca) tls.ca = ca.pem;
    if (cert && key) {
      tls.cert = cert.pem;
      tls.key = key.pem;
      tls.commonName = commonName(cert.cert);
    }
    connection.tls = tls;
  }

  const password =
    passwordFromFile ??
    (env.TITAN_ETCD_PASSWORD !== undefined && env.TITAN_ETCD_PASSWORD !== '' ? env.TITAN_ETCD_PASSWORD : undefined) ??
    contextPassword(context);
  if (user !== undefined && user !== '') {
    if (password === undefined) throw invalidInput('--etcd-user', 'needs a password: set TITAN_ETCD_PASSWORD or --etcd-password-file');
    connection.auth = { user, password };
  } else if (passwordFromFile !== undefined) {
    throw invalidInput('--etcd-password-file', 'needs --etcd-user (or TITAN_ETCD_USER)');
  }
  return connection;
}

/** A context's password, from its file (read only when nothing above it gives one) or kept inline. */
function contextPassword(context: EtcdConnectionLayer | undefined): string | undefined {
  if (context === undefined) return undefined;
  const file = context.values.etcdPasswordFile;
  return file !== undefined ? readSecretFile(file, context.field('etcdPasswordFile')) : context.values.etcdPassword;
}

/** The subject CN of a certificate: the etcd user a client-cert-auth etcd sees. */
export function commonName(cert: crypto.X509Certificate): string | undefined {
  for (const line of cert.subject.split('\n')) {
    if (line.startsWith('CN=')) return line.slice(3);
  }
  return undefined;
}

/**
 * A worker authenticated by certificate must be the node its certificate
 * names, or it would act as (and be granted the keys of) another node.
 */
export function checkNodeIdentity(connection: EtcdConnection, nodeId: string): void {
  const cn = connection.tls?.commonName;
  // A password user takes precedence over the certificate in etcd; a CN of
  // another PKI (etcd without --client-cert-auth) is no Titan identity.
  if (cn === undefined || connection.auth !== undefined || !cn.startsWith('titan-')) return;
  if (cn !== nodeUser(nodeId)) {
    throw invalidInput(
      '--etcd-cert',
      `the certificate is for "${cn}" but this worker is --node-id ${nodeId} (expected CN ${nodeUser(nodeId)}); use the node's own certificate or its node id`,
    );
  }
}
