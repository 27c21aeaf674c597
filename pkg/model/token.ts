import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TitanError, invalidInput } from './errors.js';
import { queueOf } from './queue.js';

/**
 * API tokens: what the HTTP API lets a caller do. The secret is shown once,
 * at creation; etcd keeps only its SHA-256 (the secret is 32 random bytes,
 * so the hash needs no salt or stretching: nothing can guess its preimage).
 */
export const TOKEN_ROLES = ['reader', 'submitter', 'operator', 'admin'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

export interface ApiToken {
  /** Public part of the secret and the key of the record: `titan token revoke <id>`. */
  id: string;
  /** Who or what it is for (free text for people; never used for access). */
  name: string;
  role: TokenRole;
  /** Queues it is limited to; absent: every queue. */
  queues?: string[];
  /** SHA-256 of the whole secret, hex. */
  hash: string;
  createdAt: number;
  /** Refused from this time on; absent: never expires. */
  expiresAt?: number;
}

/** What a call needs. Each role has everything of the roles before it. */
export type Permission = 'read' | 'submit' | 'manage-queues' | 'manage-tokens';

const ROLE_PERMISSIONS: Record<TokenRole, readonly Permission[]> = {
  reader: ['read'],
  submitter: ['read', 'submit'],
  operator: ['read', 'submit', 'manage-queues'],
  admin: ['read', 'submit', 'manage-queues', 'manage-tokens'],
};

export function roleAllows(role: TokenRole, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].includes(permission);
}

/** Everything a role may do (what a client such as the dashboard greys out otherwise). */
export function permissionsOf(role: TokenRole): readonly Permission[] {
  return ROLE_PERMISSIONS[role];
}

export function parseTokenRole(text: string | undefined, field = 'role'): TokenRole {
  const role = (text ?? '').trim().toLowerCase();
  if ((TOKEN_ROLES as readonly string[]).includes(role)) return role as TokenRole;
  throw invalidInput(field, `"${text ?? ''}" is not a role (use ${TOKEN_ROLES.join(', ')})`);
}

const SECRET_PREFIX = 'titan_';
const TOKEN_ID = /^[a-z0-9]{12}$/;

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A new token's record and its secret (`titan_<id>_<43 base64url characters>`), which is printed once. */
export function newToken(fields: Omit<ApiToken, 'id' | 'hash' | 'createdAt'>, now = Date.now()): { token: ApiToken; secret: string } {
  const id = randomBytes(9).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, '0').slice(0, 12);
  const secret = `${SECRET_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
  return { token: { ...fields, id, hash: hashSecret(secret), createdAt: now }, secret };
}

/** The token id a presented secret names, or undefined for text that is no Titan secret. */
export function tokenIdOf(secret: string): string | undefined {
  if (!secret.startsWith(SECRET_PREFIX)) return undefined;
  const id = secret.slice(SECRET_PREFIX.length, SECRET_PREFIX.length + 12);
  return TOKEN_ID.test(id) && secret[SECRET_PREFIX.length + 12] === '_' ? id : undefined;
}

export function isTokenId(text: string): boolean {
  return TOKEN_ID.test(text);
}

/** Constant-time: the time taken tells nothing of how much of the hash matched. */
export function secretMatches(token: ApiToken, secret: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(token.hash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/** Whether the token's queue scope covers a job (or a queue name). */
export function tokenCoversQueue(token: Pick<ApiToken, 'queues'>, queue: string): boolean {
  return token.queues === undefined || token.queues.includes(queue);
}

export function tokenCoversJob(token: Pick<ApiToken, 'queues'>, job: { queue?: string }): boolean {
  return tokenCoversQueue(token, queueOf(job));
}

/** Why a presented token is not accepted now, or undefined when it is. */
export function tokenRefusal(token: ApiToken | undefined, secret: string, now = Date.now()): TitanError | undefined {
  if (!token || !secretMatches(token, secret)) return new TitanError('Unauthenticated', 'the API token is not valid (revoked, mistyped, or of another cluster); ask for a new one: titan token create');
  if (token.expiresAt !== undefined && token.expiresAt <= now) {
    return new TitanError('Unauthenticated', `the API token ${token.id} expired at ${new Date(token.expiresAt).toISOString()}; ask for a new one: titan token create`);
  }
  return undefined;
}
