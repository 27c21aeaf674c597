import fs from 'node:fs';
import { GRPCInvalidArgumentError, GRPCUnauthenticatedError, EtcdPermissionDeniedError, type Etcd3 } from 'etcd3';
import { MASTER_USER, nodeUser, resolveEtcdConnection } from '../../pkg/config/etcd-connection.js';
import type { DevPki } from '../localcluster/dev-pki.js';
import { invalidInput, TitanError } from '../../pkg/model/errors.js';
import { connectEtcd, type EtcdConnection } from '../../pkg/store/client.js';
import { storeError } from '../../pkg/store/errors.js';
import { Keys } from '../../pkg/store/keys.js';
import {
  clusterRoles,
  describeGrant,
  ensureRole,
  ensureRootUser,
  ensureUser,
  MASTER_ROLE,
  nodeRole,
  ROOT_USER,
  USER_ROLES,
  userRole,
  type RoleSpec,
  type UserRole,
} from '../../pkg/store/roles.js';
import { CLI_CALL_TIMEOUT_MS, type CliConfig } from './context.js';

/** `titan auth add-user|add-node` flags. */
export interface NewUserFlags {
  role?: string;
  passwordFile?: string;
}

/** What a `titan auth` command did, one line per role or user. */
export interface AuthReport {
  lines: string[];
}

/** A new user's password: TITAN_AUTH_NEW_PASSWORD or --password-file; none = a certificate-only user. */
export function newPassword(flags: NewUserFlags, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.passwordFile !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(flags.passwordFile, 'utf8');
    } catch (err) {
      throw invalidInput('--password-file', `cannot read ${flags.passwordFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const password = text.replace(/\r?\n$/, '');
    if (password === '') throw invalidInput('--password-file', `${flags.passwordFile} is empty`);
    return password;
  }
  const fromEnv = env.TITAN_AUTH_NEW_PASSWORD;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
}

export function parseUserRole(text: string | undefined): UserRole {
  if (text === undefined) throw invalidInput('--role', `is required: ${Object.keys(USER_ROLES).join(' or ')}`);
  const role = text.trim();
  if (!(role in USER_ROLES)) throw invalidInput('--role', `"${text}" is not ${Object.keys(USER_ROLES).join(' or ')}`);
  return role as UserRole;
}

function parseUserName(text: string, field: string): string {
  const name = text.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/.test(name)) throw invalidInput(field, `"${text}" is not a user name (letters, digits, '.', '_', '@', '-')`);
  return name;
}

const describeRole = (spec: RoleSpec, outcome: string): string => `role ${spec.name}: ${outcome} (${spec.grants.map(describeGrant).join(', ')})`;

/**
 * A client for the auth API. Before `auth enable` etcd refuses to log in a
 * password user ("authentication is not enabled"), so with a password the
 * client first tries without it: that works only while auth is off.
 */
async function withAuthClient<T>(config: CliConfig, run: (client: Etcd3) => Promise<T>): Promise<T> {
  const attempt = async (connection: EtcdConnection): Promise<T> => {
    const client = connectEtcd({ ...connection, callTimeoutMs: CLI_CALL_TIMEOUT_MS });
    try {
      return await run(client);
    } finally {
      client.close();
    }
  };
  try {
    if (config.etcd.auth === undefined) return await attempt(config.etcd);
    const anonymous: EtcdConnection = { endpoints: config.etcd.endpoints, ...(config.etcd.tls ? { tls: config.etcd.tls } : {}) };
    try {
      return await attempt(anonymous);
    } catch (err) {
      const authOn = err instanceof GRPCInvalidArgumentError || err instanceof EtcdPermissionDeniedError || err instanceof GRPCUnauthenticatedError;
      if (!authOn) throw err;
      return await attempt(config.etcd);
    }
  } catch (err) {
    throw storeError(err, config.etcd.endpoints);
  }
}

/**
 * `titan auth setup`: Titan's roles, the titan-master user (client
 * certificate, or a password when one is given), etcd's root user, then
 * `auth enable`. Run with root's
 * credentials (a certificate with CN root, or --etcd-user root); again, it
 * changes nothing.
 */
export async function setupAuth(config: CliConfig, masterPassword?: string): Promise<AuthReport> {
  const rootPassword = config.etcd.auth?.user === ROOT_USER ? config.etcd.auth.password : undefined;
  const rootByCert = config.etcd.tls?.commonName === ROOT_USER && config.etcd.auth === undefined;
  if (rootPassword === undefined && !rootByCert) {
    throw invalidInput(
      '--etcd-user',
      'titan auth setup needs etcd root credentials: --etcd-cert/--etcd-key of a certificate with CN root, or --etcd-user root with TITAN_ETCD_PASSWORD',
    );
  }
  const keys = new Keys(config.prefix);
  return withAuthClient(config, async (client) => {
    const lines: string[] = [];
    for (const spec of clusterRoles(keys)) lines.push(describeRole(spec, await ensureRole(client, spec)));
    const master = await ensureUser(client, MASTER_USER, MASTER_ROLE, masterPassword);
    lines.push(`user ${MASTER_USER}: ${master} (role ${MASTER_ROLE}; ${masterPassword === undefined ? `logs in by client certificate CN ${MASTER_USER}` : 'password set'})`);
    lines.push(`user ${ROOT_USER}: ${await ensureRootUser(client, rootPassword)} (role root)`);
    // etcd ignores an enable while enabled.
    await client.auth.authEnable();
    lines.push('auth: enabled');
    return { lines };
  });
}

/** `titan auth add-node <id>`: the node's role (its grants) and user `titan-node-<id>`. */
export async function addNode(config: CliConfig, nodeId: string, password: string | undefined): Promise<AuthReport> {
  const id = nodeId.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(id)) throw invalidInput('node id', `"${nodeId}" must be 1-63 letters, digits, '.', '_' or '-'`);
  const spec = nodeRole(new Keys(config.prefix), id);
  const user = nodeUser(id);
  return withAuthClient(config, async (client) => ({
    lines: [
      describeRole(spec, await ensureRole(client, spec)),
      `user ${user}: ${await ensureUser(client, user, spec.name, password)} (role ${spec.name}; ${password === undefined ? `logs in by client certificate CN ${user}` : 'password set'})`,
    ],
  }));
}

/** `titan auth add-user <name> --role operator|reader`. */
export async function addUser(config: CliConfig, name: string, role: UserRole, password: string | undefined): Promise<AuthReport> {
  const user = parseUserName(name, 'user name');
  if (user === ROOT_USER || user === MASTER_USER || user.startsWith('titan-node-')) {
    throw new TitanError('InvalidInput', `user name: ${user} is reserved (titan auth setup and add-node make it)`, { field: 'user name' });
  }
  const spec = userRole(new Keys(config.prefix), role);
  return withAuthClient(config, async (client) => ({
    lines: [
      describeRole(spec, await ensureRole(client, spec)),
      `user ${user}: ${await ensureUser(client, user, spec.name, password)} (role ${spec.name}; ${password === undefined ? `logs in by client certificate CN ${user}` : 'password set'})`,
    ],
  }));
}

/** The operator a local secure cluster makes for its user (scripts/pki.sh makes its certificate). */
export const LOCAL_OPERATOR = 'titan-operator';

/**
 * Auth for a local cluster on certificates of scripts/pki.sh (`titan dev
 * --secure`, `npm run chaos -- --tls`): roles, titan-master, each node and
 * the operator, then auth on; etcd's root certificate does it.
 */
export async function setupLocalAuth(endpoints: string, prefix: string, pki: DevPki, nodeIds: string[]): Promise<void> {
  const etcd = resolveEtcdConnection({ endpoints, ...pki.flags(ROOT_USER) }, {});
  const root: CliConfig = { endpoints: etcd.endpoints, etcd, prefix, output: 'table', verbose: false };
  await setupAuth(root);
  for (const id of nodeIds) await addNode(root, id, undefined);
  await addUser(root, LOCAL_OPERATOR, 'operator', undefined);
}
