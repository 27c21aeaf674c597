import { resolveApiConnection, type ApiConnection, type ApiConnectionFlags } from '../../pkg/config/api-connection.js';
import { DEFAULT_PREFIX, resolveOption } from '../../pkg/config/env.js';
import { resolveEtcdConnection, type EtcdConnection, type EtcdConnectionFlags } from '../../pkg/config/etcd-connection.js';
import { invalidInput } from '../../pkg/model/errors.js';
import type { Store, StoreOptions } from '../../pkg/store/store.js';
import { apiLayer, etcdLayer, loadContextsFile, selectContext } from './contexts-file.js';
import { parseOutputFormat, type OutputFormat } from './output.js';

/** Global flags as commander hands them over (all optional; env and defaults fill the gaps). */
export interface GlobalFlags extends EtcdConnectionFlags, ApiConnectionFlags {
  /** The context to use instead of the config file's current one (env TITAN_CONTEXT). */
  context?: string;
  prefix?: string;
  output?: string;
  verbose?: boolean;
}

export interface CliConfig {
  endpoints: string[];
  /** Endpoints, TLS and credentials: what the Store connects with. */
  etcd: EtcdConnection;
  /** The master's HTTP API, when an address is given (--addr, TITAN_ADDR or the context); else the CLI talks to etcd. */
  api?: ApiConnection;
  /** The context whose values fill what flags and env leave open, if any. */
  context?: string;
  prefix: string;
  output: OutputFormat;
  verbose: boolean;
}

export function parsePrefix(text: string, field: string): string {
  const value = text.trim();
  if (!/^\/[A-Za-z0-9_.\-/]*$/.test(value) || value.replace(/\/+$/, '') === '') {
    throw invalidInput(field, `"${text}" is not a key prefix (use something like /titan)`);
  }
  return value;
}

/** 3 for a flag, 2 for the environment, 1 for the context, 0 when not given. */
function layerOf(flag: string | undefined, envValue: string | undefined, inContext: boolean): number {
  return flag !== undefined ? 3 : envValue ? 2 : inContext ? 1 : 0;
}

/**
 * Both etcd endpoints and an API address are given: the API is used, unless
 * the endpoints were given at a stronger layer (an --endpoints flag over a
 * context's address, say): what the user typed last wins.
 */
function etcdGivenOverAddr(flags: GlobalFlags, env: NodeJS.ProcessEnv, context: { addr?: string; endpoints?: string[] } | undefined): boolean {
  const etcd = layerOf(flags.endpoints, env.TITAN_ENDPOINTS, context?.endpoints !== undefined);
  return etcd > layerOf(flags.addr, env.TITAN_ADDR, context?.addr !== undefined);
}

/**
 * Flags → config: a flag beats TITAN_* env beats the context in effect
 * (--context, TITAN_CONTEXT, or the config file's current one) beats the
 * default; invalid values are InvalidInput naming where they came from.
 */
export function resolveCliConfig(flags: GlobalFlags, env: NodeJS.ProcessEnv = process.env): CliConfig {
  const selected = selectContext(flags.context, env, loadContextsFile(env));
  const etcd = resolveEtcdConnection(flags, env, selected && etcdLayer(selected));
  const api = etcdGivenOverAddr(flags, env, selected?.context) ? undefined : resolveApiConnection(flags, env, selected && apiLayer(selected));
  const prefixBelow = selected && { value: selected.context.prefix, field: `prefix of context ${selected.name}` };
  return {
    endpoints: etcd.endpoints,
    etcd,
    ...(api !== undefined ? { api } : {}),
    ...(selected !== undefined ? { context: selected.name } : {}),
    prefix: resolveOption(flags.prefix, 'TITAN_PREFIX', DEFAULT_PREFIX, parsePrefix, env, prefixBelow),
    output: flags.output === undefined ? 'table' : parseOutputFormat(flags.output),
    verbose: flags.verbose === true,
  };
}

/**
 * Deadline of each etcd call made by the CLI. etcd3 retries a call that times
 * out up to 3 times, so an etcd that accepts connections but never answers is
 * reported after about 3 × this (a closed port fails at once).
 */
export const CLI_CALL_TIMEOUT_MS = 1500;

/**
 * Opens a Store for one command and always closes it, so the process can
 * exit. Extra store options (e.g. other deadlines) pass through. The etcd
 * client (gRPC) is loaded here, when a command first talks to etcd.
 */
export async function withStore<T>(
  config: CliConfig,
  run: (store: Store) => Promise<T>,
  options: Partial<StoreOptions> = {},
): Promise<T> {
  const { Store } = await import('../../pkg/store/store.js');
  const store = new Store({ callTimeoutMs: CLI_CALL_TIMEOUT_MS, ...options, ...config.etcd, prefix: config.prefix });
  try {
    return await run(store);
  } finally {
    store.close();
  }
}
