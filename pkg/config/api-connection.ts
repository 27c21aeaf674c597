import { invalidInput } from '../model/errors.js';
import { resolveOption, type LayerValue } from './env.js';
import { readCertificate, readSecretFile } from './etcd-connection.js';

/** The API flags as commander hands them over. The token has no flag on purpose: it would show in `ps`. */
export interface ApiConnectionFlags {
  addr?: string;
  apiCacert?: string;
}

/** Where a client reaches a master's HTTP API, and as whom. */
export interface ApiConnection {
  /** Base URL without a trailing slash: http://127.0.0.1:4646, https://titan.example.com/titan. */
  addr: string;
  /** Sent as `Authorization: Bearer`; absent for an API without tokens. */
  token?: string;
  /** CA (PEM) that signed the API's certificate, when it is not one the system trusts. */
  ca?: Buffer;
}

/** The API values of a CLI context: used where neither a flag nor the env gives one. */
export interface ApiConnectionLayer {
  values: ApiConnectionFlags & { token?: string };
  /** How errors name one of the values, e.g. `addr of context prod`. */
  field(key: keyof ApiConnectionFlags | 'token'): string;
}

/** Longest token accepted: far above any Titan makes, short enough for one HTTP header. */
export const MAX_TOKEN_LENGTH = 4096;

/** `--addr`: an http(s) URL with a host, kept as origin plus path (a reverse proxy may serve the API under one). */
export function parseApiAddr(text: string, field: string): string {
  const hint = 'use http://host:port or https://host:port, e.g. http://127.0.0.1:4646';
  const value = text.trim();
  if (/^[^\s/:]+:\d+$/.test(value)) throw invalidInput(field, `"${text}" has no scheme: use http://${value} or https://${value}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidInput(field, `"${text}" is not a URL (${hint})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidInput(field, `"${text}" is not an http or https URL (${hint})`);
  if (url.hostname === '') throw invalidInput(field, `"${text}" names no host (${hint})`);
  // Credentials in a URL end up in shell history and logs: the token comes from TITAN_TOKEN.
  if (url.username !== '' || url.password !== '') throw invalidInput(field, 'must not hold a user or password: the token comes from TITAN_TOKEN');
  if (url.search !== '' || url.hash !== '') throw invalidInput(field, `"${text}" has a query or fragment; give the base URL only (${hint})`);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** A bearer token: visible ASCII without spaces. The message never repeats the value: it is a secret. */
export function parseToken(text: string, field: string): string {
  const token = text.trim();
  if (token === '') throw invalidInput(field, 'is empty');
  if (token.length > MAX_TOKEN_LENGTH) throw invalidInput(field, `is longer than ${MAX_TOKEN_LENGTH} characters: not a token`);
  if (!/^[\x21-\x7e]+$/.test(token)) throw invalidInput(field, 'is not a token (visible ASCII characters, no spaces)');
  return token;
}

const readToken = (file: string, field: string): string => parseToken(readSecretFile(file, field), field);

/**
 * The API to talk to, or undefined when no address is given (the CLI then
 * talks to etcd). Each value from a flag over TITAN_* env over the context;
 * the token only from TITAN_TOKEN or TITAN_TOKEN_FILE (or the context).
 */
export function resolveApiConnection(
  flags: ApiConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
  context?: ApiConnectionLayer,
): ApiConnection | undefined {
  const below = (key: keyof ApiConnectionFlags | 'token'): LayerValue | undefined =>
    context === undefined ? undefined : { value: context.values[key], field: context.field(key) };
  const addr = resolveOption<string | undefined>(flags.addr, 'TITAN_ADDR', undefined, parseApiAddr, env, below('addr'));
  const ca = resolveOption<{ pem: Buffer } | undefined>(flags.apiCacert, 'TITAN_API_CACERT', undefined, readCertificate, env, below('apiCacert'));
  const caField = flags.apiCacert !== undefined ? '--api-cacert' : env.TITAN_API_CACERT ? 'TITAN_API_CACERT' : (context?.field('apiCacert') ?? '--api-cacert');

  if (addr === undefined) {
    if (ca !== undefined) throw invalidInput(caField, 'needs an API address: --addr or TITAN_ADDR');
    return undefined; // a token alone is unused (the CLI talks to etcd), so it is not read
  }
  if (env.TITAN_TOKEN && env.TITAN_TOKEN_FILE) throw invalidInput('TITAN_TOKEN_FILE', 'set TITAN_TOKEN or TITAN_TOKEN_FILE, not both');
  const token = env.TITAN_TOKEN_FILE
    ? readToken(env.TITAN_TOKEN_FILE, 'TITAN_TOKEN_FILE')
    : resolveOption<string | undefined>(undefined, 'TITAN_TOKEN', undefined, parseToken, env, below('token'));
  if (ca !== undefined && addr.startsWith('http://')) {
    throw invalidInput(caField, `is a CA for TLS but the API address ${addr} is plain http: use https://${addr.slice('http://'.length)}`);
  }
  return { addr, ...(token !== undefined ? { token } : {}), ...(ca !== undefined ? { ca: ca.pem } : {}) };
}
