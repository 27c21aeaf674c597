import { invalidInput } from '../model/errors.js';

/** A value from below the environment (a CLI context), with the name errors give it. */
export interface LayerValue {
  value: string | undefined;
  field: string;
}

/**
 * One option resolved from, in order, a command-line flag, an environment
 * variable, a CLI context (`below`), then a default, and parsed in one place
 * so errors name their source.
 */
export function resolveOption<T>(
  flag: string | undefined,
  envName: string,
  fallback: T,
  parse: (text: string, field: string) => T,
  env: NodeJS.ProcessEnv = process.env,
  below?: LayerValue,
): T {
  if (flag !== undefined) return parse(flag, `--${envToFlag(envName)}`);
  const fromEnv = env[envName];
  if (fromEnv !== undefined && fromEnv !== '') return parse(fromEnv, envName);
  if (below?.value !== undefined) return parse(below.value, below.field);
  return fallback;
}

function envToFlag(envName: string): string {
  return envName.replace(/^TITAN_(MASTER_|WORKER_)?/, '').toLowerCase().replace(/_/g, '-');
}

export function parseEndpointList(text: string, field: string): string[] {
  const list = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw invalidInput(field, 'needs at least one etcd endpoint (host:port)');
  for (const e of list) {
    if (!/^(https?:\/\/)?[^\s/:]+:\d+$/.test(e)) throw invalidInput(field, `"${e}" is not host:port`);
  }
  return list;
}

export const DEFAULT_ENDPOINTS = ['127.0.0.1:2379'];
export const DEFAULT_PREFIX = '/titan';
