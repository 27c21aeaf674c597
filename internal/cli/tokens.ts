import { invalidInput } from '../../pkg/model/errors.js';
import { parseDuration } from '../../pkg/model/parse.js';
import { parseQueueName } from '../../pkg/model/queue.js';
import { isTokenId, newToken, parseTokenRole, type ApiToken } from '../../pkg/model/token.js';
import type { Store } from '../../pkg/store/store.js';
import { formatTimestamp, renderTable } from './format.js';

/** `titan token create` flags as commander hands them over. */
export interface TokenFlags {
  role?: string;
  queue?: string[];
  ttl?: string;
  name?: string;
}

/** Validated before etcd is touched: a bad flag writes nothing. */
export function planToken(flags: TokenFlags, now = Date.now()): { token: ApiToken; secret: string } {
  if (flags.role === undefined) throw invalidInput('role', 'give --role reader, submitter, operator or admin');
  const role = parseTokenRole(flags.role);
  const queues = flags.queue?.map((q) => parseQueueName(q, 'queue'));
  if (queues && (role === 'operator' || role === 'admin')) {
    throw invalidInput('queue', `an ${role} token manages queues for the whole cluster; --queue goes with reader or submitter`);
  }
  const ttlMs = flags.ttl === undefined ? undefined : parseDuration(flags.ttl, 'ttl');
  if (ttlMs !== undefined && ttlMs <= 0) throw invalidInput('ttl', 'must be more than zero');
  const name = flags.name ?? '';
  if (name.length > 200) throw invalidInput('name', 'at most 200 characters');
  return newToken({ name, role, ...(queues ? { queues: [...new Set(queues)] } : {}), ...(ttlMs !== undefined ? { expiresAt: now + ttlMs } : {}) }, now);
}

export async function createToken(store: Store, flags: TokenFlags): Promise<{ token: ApiToken; secret: string }> {
  const planned = planToken(flags);
  await store.createToken(planned.token);
  return planned;
}

/** A token as listed: everything but its hash. */
export type TokenView = Omit<ApiToken, 'hash'>;

export function tokenView(token: ApiToken): TokenView {
  const { hash: _hash, ...rest } = token;
  return rest;
}

export async function revokeToken(store: Store, id: string): Promise<void> {
  if (!isTokenId(id)) throw invalidInput('id', `"${id}" is not a token id (12 letters and digits; see titan token list)`);
  await store.revokeToken(id);
}

export function renderTokenTable(tokens: readonly ApiToken[], now = Date.now()): string {
  return renderTable(
    ['ID', 'NAME', 'ROLE', 'QUEUES', 'CREATED', 'EXPIRES'],
    tokens.map((t) => [t.id, t.name, t.role, t.queues?.join(',') ?? '(all)', formatTimestamp(t.createdAt, now), t.expiresAt === undefined ? 'never' : `${new Date(t.expiresAt).toISOString()}${t.expiresAt <= now ? ' (expired)' : ''}`]),
  );
}
