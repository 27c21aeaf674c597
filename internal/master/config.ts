import { DEFAULT_ENDPOINTS, DEFAULT_PREFIX, parseEndpointList, resolveOption } from '../../pkg/config/env.js';
import { invalidInput, parsePositiveInteger } from '../../pkg/model/index.js';
import { DEFAULT_POLICY, getPolicy } from '../scheduler/index.js';

export interface MasterFlags {
  endpoints?: string;
  prefix?: string;
  policy?: string;
  commitBatch?: string;
  commitConcurrency?: string;
}

export interface MasterConfig {
  endpoints: string[];
  prefix: string;
  policy: string;
  /** Placements per etcd transaction (each takes 2 compares and 2 puts of etcd's 128). */
  commitBatch: number;
  /** Placement transactions in flight at once. */
  commitConcurrency: number;
}

/** One validated config: flags over environment over defaults. */
export function resolveMasterConfig(flags: MasterFlags, env: NodeJS.ProcessEnv = process.env): MasterConfig {
  const policy = resolveOption(flags.policy, 'TITAN_MASTER_POLICY', DEFAULT_POLICY, (t) => getPolicy(t.trim()).name, env);
  const commitBatch = resolveOption(flags.commitBatch, 'TITAN_MASTER_COMMIT_BATCH', 64, parsePositiveInteger, env);
  if (commitBatch > 64) throw invalidInput('--commit-batch', 'at most 64 placements fit one etcd transaction');
  return {
    endpoints: resolveOption(flags.endpoints, 'TITAN_ENDPOINTS', DEFAULT_ENDPOINTS, parseEndpointList, env),
    prefix: resolveOption(flags.prefix, 'TITAN_PREFIX', DEFAULT_PREFIX, (t) => t, env),
    policy,
    commitBatch,
    commitConcurrency: resolveOption(flags.commitConcurrency, 'TITAN_MASTER_COMMIT_CONCURRENCY', 4, parsePositiveInteger, env),
  };
}
