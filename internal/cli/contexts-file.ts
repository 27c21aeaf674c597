import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Document, parse as parseYaml } from 'yaml';
import type { ApiConnectionLayer } from '../../pkg/config/api-connection.js';
import type { EtcdConnectionLayer } from '../../pkg/config/etcd-connection.js';
import { invalidInput, TitanError } from '../../pkg/model/errors.js';

/**
 * The CLI's contexts: several clusters (an API address and token, or etcd
 * endpoints and certificates) kept in one private YAML file, like kubectl's
 * kubeconfig. A context sits below flags and TITAN_* env (see resolveCliConfig).
 */
export interface CliContext {
  addr?: string;
  /** A secret: never printed. */
  token?: string;
  apiCacert?: string;
  endpoints?: string[];
  prefix?: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdUser?: string;
  etcdPasswordFile?: string;
  /** A secret: never printed. */
  etcdPassword?: string;
}

/** The fields of a context, in the order they are written. */
export const CONTEXT_FIELDS = [
  'addr',
  'token',
  'apiCacert',
  'endpoints',
  'prefix',
  'etcdCa',
  'etcdCert',
  'etcdKey',
  'etcdUser',
  'etcdPasswordFile',
  'etcdPassword',
] as const satisfies readonly (keyof CliContext)[];

export interface ContextsFile {
  /** Where it is read from and written to. */
  path: string;
  /** The context in use when neither --context nor TITAN_CONTEXT names one. */
  current?: string;
  contexts: Map<string, CliContext>;
}

/** A larger file is no config a person wrote or this CLI made. */
const MAX_FILE_BYTES = 1 << 20;

/** `$TITAN_CONFIG`, else `$XDG_CONFIG_HOME/titan/config.yaml`, else `~/.config/titan/config.yaml`. */
export function contextsFilePath(env: NodeJS.ProcessEnv): string {
  if (env.TITAN_CONFIG) return path.resolve(env.TITAN_CONFIG);
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'titan', 'config.yaml');
}

/** Names safe in a table, a shell and a YAML key: a letter or digit, then letters, digits, `.`, `_`, `-`. */
export function parseContextName(text: string, field = 'context name'): string {
  const name = text.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) {
    throw invalidInput(field, `"${text}" is not a context name (letters, digits, ".", "_" and "-", at most 63, starting with a letter or digit)`);
  }
  return name;
}

/**
 * Reads the file (absent: no contexts). It may hold tokens and passwords, so a
 * file other users can read or write is refused, never used, as ssh refuses
 * such a key: the fix is one chmod.
 */
export function loadContextsFile(env: NodeJS.ProcessEnv): ContextsFile {
  const file = contextsFilePath(env);
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw invalidInput(file, 'is not a regular file (set TITAN_CONFIG to the CLI config file)');
    if ((stat.mode & 0o077) !== 0) {
      throw invalidInput(
        file,
        `is open to other users (mode ${(stat.mode & 0o777).toString(8)}) and may hold tokens and passwords; run chmod 600 ${file}`,
      );
    }
    if (stat.size > MAX_FILE_BYTES) throw invalidInput(file, `is over ${MAX_FILE_BYTES} bytes: not a Titan CLI config`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof TitanError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { path: file, contexts: new Map() };
    throw invalidInput(file, `cannot read it (${code ?? String(err)})`);
  }
  return { path: file, ...parseContextsDocument(text, file) };
}

function parseContextsDocument(text: string, file: string): Omit<ContextsFile, 'path'> {
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw invalidInput(file, `is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const contexts = new Map<string, CliContext>();
  if (data === null || data === undefined) return { contexts };
  const top = asMapping(data, file, 'the document');
  for (const key of Object.keys(top)) {
    if (key !== 'current' && key !== 'contexts') throw invalidInput(file, `unknown field "${key}" (known: current, contexts)`);
  }
  for (const [rawName, value] of Object.entries(asMapping(top.contexts ?? {}, file, 'contexts'))) {
    const name = parseContextName(rawName, `${file}: contexts`);
    contexts.set(name, parseContext(value, file, name));
  }
  let current: string | undefined;
  if (top.current !== undefined && top.current !== null) {
    if (typeof top.current !== 'string') throw invalidInput(file, 'current: must be a context name');
    current = parseContextName(top.current, `${file}: current`);
  }
  return { contexts, ...(current !== undefined ? { current } : {}) };
}

function asMapping(value: unknown, file: string, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidInput(file, `${what} must be a mapping`);
  return value as Record<string, unknown>;
}

/** Shape only: values are checked where they are used, errors naming the context's field. */
function parseContext(value: unknown, file: string, name: string): CliContext {
  const where = `contexts.${name}`;
  const record = asMapping(value ?? {}, file, where);
  const context: CliContext = {};
  for (const [key, field] of Object.entries(record)) {
    if (!(CONTEXT_FIELDS as readonly string[]).includes(key)) {
      throw invalidInput(file, `${where}: unknown field "${key}" (known: ${CONTEXT_FIELDS.join(', ')})`);
    }
    if (key === 'endpoints') {
      if (!Array.isArray(field) || !field.every((e): e is string => typeof e === 'string')) {
        throw invalidInput(file, `${where}.endpoints: must be a list of host:port`);
      }
      context.endpoints = field;
    } else {
      if (typeof field !== 'string') throw invalidInput(file, `${where}.${key}: must be a string`);
      context[key as Exclude<keyof CliContext, 'endpoints'>] = field;
    }
  }
  return context;
}

/**
 * Writes the whole file atomically: a private temporary file (0600) in the
 * same directory, flushed, then renamed over the old one, so a crash leaves
 * the old file or the new one, and never a moment where others can read it.
 */
export function saveContextsFile(file: ContextsFile): void {
  const target = followLink(file.path);
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.fchmodSync(fd, 0o600); // whatever the umask
      fs.writeFileSync(fd, renderContextsDocument(file));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw invalidInput(file.path, `cannot write it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  syncDir(dir);
}

/** A config kept as a symbolic link (dotfiles) stays one: the file it points to is replaced. */
function followLink(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return file;
  }
}

function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Best effort: the rename is done; only its durability across a power cut is at stake.
  }
}

export function renderContextsDocument(file: Omit<ContextsFile, 'path'>): string {
  const contexts: Record<string, Record<string, string | string[]>> = {};
  for (const [name, context] of [...file.contexts].sort(([a], [b]) => a.localeCompare(b))) {
    const fields: Record<string, string | string[]> = {};
    for (const key of CONTEXT_FIELDS) {
      const value = context[key];
      if (value !== undefined) fields[key] = value;
    }
    contexts[name] = fields;
  }
  const doc = new Document({ current: file.current ?? null, contexts });
  doc.commentBefore = ' Titan CLI contexts: titan context add|use|list|remove. Holds secrets: keep it mode 0600.';
  return doc.toString();
}

/** The context in effect: --context, else TITAN_CONTEXT, else the file's current one; none is fine. */
export interface SelectedContext {
  name: string;
  context: CliContext;
  from: '--context' | 'TITAN_CONTEXT' | 'current';
}

export function selectContext(flag: string | undefined, env: NodeJS.ProcessEnv, file: ContextsFile): SelectedContext | undefined {
  const [name, from]: [string | undefined, SelectedContext['from']] =
    flag !== undefined ? [flag, '--context'] : env.TITAN_CONTEXT ? [env.TITAN_CONTEXT, 'TITAN_CONTEXT'] : [file.current, 'current'];
  if (name === undefined) return undefined;
  const context = file.contexts.get(name.trim());
  if (context !== undefined) return { name: name.trim(), context, from };
  const known = file.contexts.size > 0 ? ` (known: ${[...file.contexts.keys()].sort().join(', ')})` : ` (there are none: titan context add ${name.trim()} ...)`;
  if (from === 'current') throw invalidInput(file.path, `current: context "${name}" does not exist; run titan context use NAME${known}`);
  throw invalidInput(from, `no context "${name}" in ${file.path}${known}`);
}

const fieldOf = (name: string) => (key: string) => `${key} of context ${name}`;

/** A context's etcd values as the layer below flags and env. */
export function etcdLayer({ name, context }: SelectedContext): EtcdConnectionLayer {
  return {
    values: {
      endpoints: context.endpoints?.join(','),
      etcdCa: context.etcdCa,
      etcdCert: context.etcdCert,
      etcdKey: context.etcdKey,
      etcdUser: context.etcdUser,
      etcdPasswordFile: context.etcdPasswordFile,
      etcdPassword: context.etcdPassword,
    },
    field: fieldOf(name),
  };
}

/** A context's API values as the layer below flags and env. */
export function apiLayer({ name, context }: SelectedContext): ApiConnectionLayer {
  return { values: { addr: context.addr, apiCacert: context.apiCacert, token: context.token }, field: fieldOf(name) };
}
