import path from 'node:path';
import { parseApiAddr, parseToken, resolveApiConnection, type ApiConnectionFlags } from '../../pkg/config/api-connection.js';
import { parseEndpointList } from '../../pkg/config/env.js';
import { resolveEtcdConnection, type EtcdConnectionFlags } from '../../pkg/config/etcd-connection.js';
import { invalidInput, TitanError } from '../../pkg/model/errors.js';
import { parsePrefix } from './context.js';
import {
  loadContextsFile,
  parseContextName,
  saveContextsFile,
  selectContext,
  type CliContext,
  type ContextsFile,
  type SelectedContext,
} from './contexts-file.js';
import { renderTable } from './format.js';

/** `titan context add` flags: the global connection flags, saved, plus where the secrets come from. */
export interface ContextAddFlags extends EtcdConnectionFlags, ApiConnectionFlags {
  prefix?: string;
  tokenStdin?: boolean;
  etcdPasswordStdin?: boolean;
  use?: boolean;
  replace?: boolean;
}

/** A context as `list` and `--output json` show it: secrets only as "set or not". */
export type ContextView = Omit<CliContext, 'token' | 'etcdPassword'> & {
  name: string;
  current: boolean;
  hasToken: boolean;
  hasEtcdPassword: boolean;
};

export function contextView(name: string, context: CliContext, current: boolean): ContextView {
  const { token, etcdPassword, ...shown } = context;
  return { name, current, ...shown, hasToken: token !== undefined, hasEtcdPassword: etcdPassword !== undefined };
}

const ETCD_FILE_FLAGS = [
  ['etcdCa', '--etcd-ca'],
  ['etcdCert', '--etcd-cert'],
  ['etcdKey', '--etcd-key'],
  ['etcdPasswordFile', '--etcd-password-file'],
] as const;

/**
 * Adds (or with `replace`, replaces) a context from flags only: TITAN_* env
 * is not saved. Everything is checked the way it will be used (URL, files
 * readable and matching, token shape) before the file is written; bad input
 * writes nothing. Files are kept as absolute paths, read at each use.
 */
export async function addContext(
  nameText: string,
  flags: ContextAddFlags,
  env: NodeJS.ProcessEnv,
  readStdin: () => Promise<string>,
): Promise<{ view: ContextView; replaced: boolean }> {
  const name = parseContextName(nameText);
  const context: CliContext = {};
  if (flags.addr !== undefined) context.addr = parseApiAddr(flags.addr, '--addr');
  if (flags.apiCacert !== undefined) context.apiCacert = absolute(flags.apiCacert, '--api-cacert');
  if (flags.endpoints !== undefined) context.endpoints = parseEndpointList(flags.endpoints, '--endpoints');
  if (flags.prefix !== undefined) context.prefix = parsePrefix(flags.prefix, '--prefix');
  for (const [key, flag] of ETCD_FILE_FLAGS) {
    const value = flags[key];
    if (value !== undefined) context[key] = absolute(value, flag);
  }
  if (flags.etcdUser !== undefined) context.etcdUser = flags.etcdUser.trim();

  const etcdFlag = ETCD_FILE_FLAGS.find(([key]) => context[key] !== undefined)?.[1] ?? (context.etcdUser !== undefined ? '--etcd-user' : undefined);
  if (etcdFlag !== undefined && context.endpoints === undefined) throw invalidInput(etcdFlag, 'is for etcd: give --endpoints too');
  if (context.addr === undefined && context.endpoints === undefined) {
    throw invalidInput('--addr', 'a context needs an API address (--addr URL) or etcd endpoints (--endpoints host:port,...), or both');
  }
  if (flags.tokenStdin && context.addr === undefined) throw invalidInput('--token-stdin', 'a token is for an API: give --addr too');
  if (context.apiCacert !== undefined && context.addr === undefined) throw invalidInput('--api-cacert', 'is for an API: give --addr too');
  if (flags.tokenStdin && flags.etcdPasswordStdin) throw invalidInput('--etcd-password-stdin', 'cannot go with --token-stdin: stdin holds one secret');
  if (flags.etcdPasswordStdin && !context.etcdUser) throw invalidInput('--etcd-password-stdin', 'needs --etcd-user');
  if (flags.etcdPasswordStdin && context.etcdPasswordFile) throw invalidInput('--etcd-password-stdin', 'cannot go with --etcd-password-file');

  // Refusals that need no secret come before stdin is read.
  const file = loadContextsFile(env);
  const replaced = file.contexts.has(name);
  if (replaced && !flags.replace) {
    throw new TitanError('Conflict', `context "${name}" exists in ${file.path}: add --replace to overwrite it, or titan context remove ${name}`);
  }
  if (flags.tokenStdin) context.token = parseToken(await readStdin(), '--token-stdin');
  if (flags.etcdPasswordStdin) {
    const password = (await readStdin()).replace(/\r?\n$/, '');
    if (password === '') throw invalidInput('--etcd-password-stdin', 'read an empty password');
    context.etcdPassword = password;
  }

  if (context.addr !== undefined) resolveApiConnection({ addr: context.addr, apiCacert: context.apiCacert }, {});
  if (context.endpoints !== undefined) {
    // A user without a password here gets it from TITAN_ETCD_PASSWORD when the context is used.
    const password = context.etcdPassword ?? (context.etcdUser && !context.etcdPasswordFile ? 'given-at-use' : undefined);
    const { etcdCa, etcdCert, etcdKey, etcdUser, etcdPasswordFile } = context;
    resolveEtcdConnection(
      { endpoints: flags.endpoints, etcdCa, etcdCert, etcdKey, etcdUser, etcdPasswordFile },
      password !== undefined ? { TITAN_ETCD_PASSWORD: password } : {},
    );
  }

  file.contexts.set(name, context);
  if (flags.use) file.current = name;
  saveContextsFile(file);
  return { view: contextView(name, context, file.current === name), replaced };
}

function absolute(file: string, flag: string): string {
  if (file.trim() === '') throw invalidInput(flag, 'must name a file');
  return path.resolve(file.trim());
}

function requireContext(file: ContextsFile, nameText: string): string {
  const name = parseContextName(nameText);
  if (file.contexts.has(name)) return name;
  const known = file.contexts.size > 0 ? `known: ${[...file.contexts.keys()].sort().join(', ')}` : 'there are none';
  throw new TitanError('NotFound', `no context "${name}" in ${file.path} (${known})`);
}

/** Makes a context the current one. */
export function useContext(nameText: string, env: NodeJS.ProcessEnv): string {
  const file = loadContextsFile(env);
  const name = requireContext(file, nameText);
  file.current = name;
  saveContextsFile(file);
  return name;
}

/** Removes a context; removing the current one leaves none current. */
export function removeContext(nameText: string, env: NodeJS.ProcessEnv): { name: string; wasCurrent: boolean } {
  const file = loadContextsFile(env);
  const name = requireContext(file, nameText);
  file.contexts.delete(name);
  const wasCurrent = file.current === name;
  if (wasCurrent) delete file.current;
  saveContextsFile(file);
  return { name, wasCurrent };
}

/** Every context, by name; `current` marks the one in effect (--context and TITAN_CONTEXT count). */
export function listContexts(flag: string | undefined, env: NodeJS.ProcessEnv): ContextView[] {
  const file = loadContextsFile(env);
  const inEffect = selectContext(flag, env, file)?.name;
  return [...file.contexts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, context]) => contextView(name, context, name === inEffect));
}

/** The context in effect and what chose it; none is NotFound (exit 1), as kubectl's current-context. */
export function currentContext(flag: string | undefined, env: NodeJS.ProcessEnv): Omit<SelectedContext, 'context'> {
  const file = loadContextsFile(env);
  const selected = selectContext(flag, env, file);
  if (selected === undefined) throw new TitanError('NotFound', `no current context in ${file.path} (titan context use NAME; titan context list)`);
  return { name: selected.name, from: selected.from };
}

/** Variables that, when set, beat what a context says (flag > env > context). */
const OVERRIDING_ENV = [
  'TITAN_CONTEXT',
  'TITAN_ADDR',
  'TITAN_TOKEN',
  'TITAN_TOKEN_FILE',
  'TITAN_API_CACERT',
  'TITAN_ENDPOINTS',
  'TITAN_PREFIX',
  'TITAN_ETCD_CA',
  'TITAN_ETCD_CERT',
  'TITAN_ETCD_KEY',
  'TITAN_ETCD_USER',
  'TITAN_ETCD_PASSWORD',
  'TITAN_ETCD_PASSWORD_FILE',
] as const;

export function overridingEnv(env: NodeJS.ProcessEnv): string[] {
  return OVERRIDING_ENV.filter((name) => env[name] !== undefined && env[name] !== '');
}

export function renderContextTable(views: readonly ContextView[]): string {
  return renderTable(
    ['CURRENT', 'NAME', 'API', 'ETCD', 'PREFIX', 'AUTH'],
    views.map((v) => [v.current ? '*' : '', v.name, v.addr ?? '', v.endpoints?.join(',') ?? '', v.prefix ?? '', describeAuth(v)]),
  );
}

/** How a context logs in, without its secrets: token, cert, user NAME. */
function describeAuth(v: ContextView): string {
  const parts: string[] = [];
  if (v.hasToken) parts.push('token');
  if (v.etcdCert !== undefined) parts.push('cert');
  if (v.etcdUser !== undefined) parts.push(`user ${v.etcdUser}`);
  return parts.join(', ');
}

/** All of stdin as text: where `--token-stdin` and `--etcd-password-stdin` read their secret. */
export async function readStdin(stream: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
