import type { Etcd3, IPermission } from 'etcd3';
import { EtcdRoleExistsError, EtcdRoleNotFoundError, EtcdUserExistsError, EtcdUserNotFoundError } from 'etcd3';
import { Keys } from './keys.js';
import { prefixEnd } from './txn.js';

/**
 * Titan's etcd roles, built from the key layout (Keys) in this one place:
 * `titan auth` writes them, docs/security.md lists them. Every prefix grant
 * ends with the separator, so node n1's grants never cover n10's keys.
 */
export type Access = 'Read' | 'Write' | 'Readwrite';

export interface Grant {
  access: Access;
  /** A prefix (ends with '/') or one exact key. */
  key: string;
  prefix: boolean;
}

export interface RoleSpec {
  name: string;
  grants: Grant[];
}

export const MASTER_ROLE = 'titan-master';
export const OPERATOR_ROLE = 'titan-operator';
export const READER_ROLE = 'titan-reader';
/** The roles `titan auth add-user --role` offers. */
export const USER_ROLES = { operator: OPERATOR_ROLE, reader: READER_ROLE } as const;
export type UserRole = keyof typeof USER_ROLES;

/** etcd's own administrator: `auth enable` needs it, with the root role. */
export const ROOT_USER = 'root';

export function nodeRoleName(nodeId: string): string {
  return `titan-node-${nodeId}`;
}

const prefix = (access: Access, key: string): Grant => ({ access, key, prefix: true });
const exact = (access: Access, key: string): Grant => ({ access, key, prefix: false });

/** The master reads and writes everything of its cluster. */
export function masterRole(keys: Keys): RoleSpec {
  return { name: MASTER_ROLE, grants: [prefix('Readwrite', keys.all())] };
}

/**
 * A worker node writes only under its own prefixes: its registration, its
 * reports of each attempt (the master folds them into job records) and its
 * output. It reads its assignments, which carry the jobs it runs, and the
 * layout version. No job record, queue, other node or the leader key.
 */
export function nodeRole(keys: Keys, nodeId: string): RoleSpec {
  return {
    name: nodeRoleName(nodeId),
    grants: [
      exact('Readwrite', keys.node(nodeId)),
      prefix('Readwrite', keys.nodeReports(nodeId)),
      prefix('Readwrite', keys.nodeLogs(nodeId)),
      prefix('Read', keys.nodeAssignments(nodeId)),
      // A worker refuses data of another layout version (pkg/store/layout.ts).
      exact('Read', keys.layout()),
    ],
  };
}

/** A person who submits, cancels and manages queues: the whole cluster. */
export function operatorRole(keys: Keys): RoleSpec {
  return { name: OPERATOR_ROLE, grants: [prefix('Readwrite', keys.all())] };
}

/** A person who only looks: list, status, logs, nodes, queues. */
export function readerRole(keys: Keys): RoleSpec {
  return { name: READER_ROLE, grants: [prefix('Read', keys.all())] };
}

export function userRole(keys: Keys, role: UserRole): RoleSpec {
  return role === 'operator' ? operatorRole(keys) : readerRole(keys);
}

function rangeEnd(grant: Grant): Buffer {
  // etcd: an empty range_end is one key; prefixEnd(prefix) covers the prefix.
  return grant.prefix ? prefixEnd(grant.key) : Buffer.alloc(0);
}

function sameGrant(grant: Grant, perm: IPermission): boolean {
  return (
    perm.permType === grant.access &&
    Buffer.from(perm.key ?? []).equals(Buffer.from(grant.key)) &&
    Buffer.from(perm.range_end ?? []).equals(rangeEnd(grant))
  );
}

export type Outcome = 'created' | 'updated' | 'unchanged';

/**
 * The role exists with exactly these grants: missing ones are granted and
 * others revoked, so running it again changes nothing.
 */
export async function ensureRole(client: Etcd3, spec: RoleSpec): Promise<Outcome> {
  let created = false;
  try {
    await client.auth.roleAdd({ name: spec.name });
    created = true;
  } catch (err) {
    if (!(err instanceof EtcdRoleExistsError)) throw err;
  }
  const current = (await client.auth.roleGet({ role: spec.name })).perm;
  let changed = false;
  for (const perm of current) {
    if (spec.grants.some((g) => sameGrant(g, perm))) continue;
    await client.auth.roleRevokePermission({ role: spec.name, key: perm.key, range_end: perm.range_end });
    changed = true;
  }
  for (const grant of spec.grants) {
    if (current.some((perm) => sameGrant(grant, perm))) continue;
    await client.auth.roleGrantPermission({
      name: spec.name,
      perm: { permType: grant.access, key: Buffer.from(grant.key), range_end: rangeEnd(grant) },
    });
    changed = true;
  }
  return created ? 'created' : changed ? 'updated' : 'unchanged';
}

/**
 * The user exists and holds the role. Without a password it can only log in
 * by client certificate (etcd --client-cert-auth, the CN names it); a given
 * password is set on an existing user too.
 */
export async function ensureUser(client: Etcd3, name: string, role: string, password?: string, resetPassword = true): Promise<Outcome> {
  let created = false;
  let changed = false;
  try {
    await client.auth.userAdd(password === undefined ? { name, options: { no_password: true } } : { name, password });
    created = true;
  } catch (err) {
    if (!(err instanceof EtcdUserExistsError)) throw err;
    if (password !== undefined && resetPassword) {
      await client.auth.userChangePassword({ name, password });
      changed = true;
    }
  }
  const roles = (await client.auth.userGet({ name })).roles;
  if (roles.includes(role)) return created ? 'created' : changed ? 'updated' : 'unchanged';
  await client.auth.userGrantRole({ user: name, role });
  return created ? 'created' : 'updated';
}

/** Whether a user exists. */
export async function userExists(client: Etcd3, name: string): Promise<boolean> {
  try {
    await client.auth.userGet({ name });
    return true;
  } catch (err) {
    if (err instanceof EtcdUserNotFoundError || err instanceof EtcdRoleNotFoundError) return false;
    throw err;
  }
}

/** etcd refuses `auth enable` without a root user holding the root role; an existing root keeps its password. */
export async function ensureRootUser(client: Etcd3, password?: string): Promise<Outcome> {
  try {
    await client.auth.roleAdd({ name: ROOT_USER });
  } catch (err) {
    if (!(err instanceof EtcdRoleExistsError)) throw err;
  }
  return ensureUser(client, ROOT_USER, ROOT_USER, password, false);
}

/** All of Titan's fixed roles (nodes get theirs from `titan auth add-node`). */
export function clusterRoles(keys: Keys): RoleSpec[] {
  return [masterRole(keys), operatorRole(keys), readerRole(keys)];
}

/** The grants as text for docs and `titan auth` output: `readwrite /titan/jobs/*`. */
export function describeGrant(grant: Grant): string {
  return `${grant.access.toLowerCase()} ${grant.key}${grant.prefix ? '*' : ''}`;
}

/**
 * The roles and their grants as a Markdown table (docs/etcd-layout.md holds
 * this table, and a unit test checks it against this code).
 */
export function rolesTable(keys: Keys): string {
  const rows = [...clusterRoles(keys), nodeRole(keys, '<id>')].map((role) => `| \`${role.name}\` | ${role.grants.map((g) => `${describeGrant(g)}`).join(', ')} |`);
  return ['| role | grants |', '|---|---|', ...rows].join('\n');
}
