import os from 'node:os';
import { DEFAULT_PREFIX, resolveOption } from '../../pkg/config/env.js';
import { resolveEtcdConnection, type EtcdConnection, type EtcdConnectionFlags } from '../../pkg/config/etcd-connection.js';
import { DEFAULT_RETRY_POLICY, invalidInput, parseDuration, parseMemory, parseNonNegativeInteger, parsePositiveInteger } from '../../pkg/model/index.js';
import { MAX_PLACEMENTS_PER_TXN } from '../../pkg/store/index.js';
import { DEFAULT_POLICY, createPolicy, parseSampleNodes } from '../scheduler/index.js';
import { parseListen } from '../api/listen.js';

export interface MasterFlags extends EtcdConnectionFlags {
  prefix?: string;
  policy?: string;
  sampleNodes?: string;
  id?: string;
  leaseTtl?: string;
  nodeLostRetries?: string;
  retain?: string;
  retainJobs?: string;
  evictGrace?: string;
  minRuntime?: string;
  retentionInterval?: string;
  compactHistory?: string;
  commitBatch?: string;
  commitConcurrency?: string;
  startDeadline?: string;
  etcdQuotaBytes?: string;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export interface MasterConfig {
  endpoints: string[];
  /** Endpoints, TLS and credentials: what the Store connects with. */
  etcd: EtcdConnection;
  prefix: string;
  policy: string;
  /** Feasible nodes scored per placement (Infinity: every one); absent, feasibleNodesToScore of the cluster's size. */
  sampleNodes?: number;
  /** Placements per etcd transaction (each takes 2 compares and 2 puts of etcd's 128, less the leader guard). */
  commitBatch: number;
  /** Placement transactions in flight at once. */
  commitConcurrency: number;
  /** Names this master in the leader key and logs. */
  id: string;
  /** TTL of the leadership lease: a dead leader is replaced within about this long. */
  leaseTtlSeconds: number;
  /** How often an attempt lost with its node is retried. */
  nodeLostRetries: number;
  /** Ended jobs are removed after this long (by finish time)… */
  retainMs: number;
  /** SIGTERM → SIGKILL grace of an eviction. */
  evictGraceMs: number;
  /** Minimum runtime before a job may be evicted, for jobs that set none. */
  minRuntimeMs: number;
  /** …or when more than this many have ended, oldest first. */
  retainJobs: number;
  /** How often the leader sweeps ended jobs. */
  retentionIntervalMs: number;
  /** etcd history the leader keeps: it compacts to the revision it saw this long ago; 0: it never compacts. */
  compactHistoryMs: number;
  /** An attempt its node has not started (still Scheduled) this long after its assignment goes back to Pending. */
  startDeadlineMs: number;
  /** etcd's --quota-backend-bytes: past 80% of it, submits are refused (StorageWatch). */
  etcdQuotaBytes: number;
  /** How often the leader reads etcd's database size. */
  storageCheckMs: number;
  /** The HTTP API's listener (`host:port`) and its TLS files; absent: no API. */
  api?: { listen: string; tls?: { certFile: string; keyFile: string } };
}

/**
 * A compaction drops the history of every key in etcd, other applications'
 * too: at most once per 5 minutes by default, the interval kube-apiserver uses
 * on the etcd it may share. A dedicated etcd can take a shorter window (5s
 * keeps etcd's per-request CPU lowest, docs/benchmarks.md); `off` leaves
 * compaction to etcd's --auto-compaction or an operator.
 */
export const DEFAULT_COMPACT_HISTORY_MS = 5 * 60_000;

/** etcd's own default --quota-backend-bytes. */
export const DEFAULT_ETCD_QUOTA_BYTES = 2 * 2 ** 30;

/** Well past a slow start (a claim takes milliseconds; the image pull comes after it). */
export const DEFAULT_START_DEADLINE_MS = 5 * 60_000;

/** One validated config: flags over environment over defaults. */
export function resolveMasterConfig(flags: MasterFlags, env: NodeJS.ProcessEnv = process.env): MasterConfig {
  const policy = resolveOption(flags.policy, 'TITAN_MASTER_POLICY', DEFAULT_POLICY, (t) => createPolicy(t.trim()).name, env);
  const commitBatch = resolveOption(flags.commitBatch, 'TITAN_MASTER_COMMIT_BATCH', MAX_PLACEMENTS_PER_TXN, parsePositiveInteger, env);
  if (commitBatch > MAX_PLACEMENTS_PER_TXN) {
    throw invalidInput('--commit-batch', `at most ${MAX_PLACEMENTS_PER_TXN} placements fit one etcd transaction`);
  }
  const etcd = resolveEtcdConnection(flags, env);
  const sampleNodes = resolveOption<number | undefined>(flags.sampleNodes, 'TITAN_MASTER_SAMPLE_NODES', undefined, parseSampleNodes, env);
  return {
    endpoints: etcd.endpoints,
    etcd,
    prefix: resolveOption(flags.prefix, 'TITAN_PREFIX', DEFAULT_PREFIX, (t) => t, env),
    policy,
    ...(sampleNodes === undefined ? {} : { sampleNodes }),
    commitBatch,
    commitConcurrency: resolveOption(flags.commitConcurrency, 'TITAN_MASTER_COMMIT_CONCURRENCY', 8, parsePositiveInteger, env),
    id: resolveOption(flags.id, 'TITAN_MASTER_ID', `${os.hostname()}-${process.pid}`, (t) => t, env),
    leaseTtlSeconds: resolveOption(flags.leaseTtl, 'TITAN_MASTER_LEASE_TTL', 5, parsePositiveInteger, env),
    nodeLostRetries: resolveOption(flags.nodeLostRetries, 'TITAN_NODE_LOST_RETRIES', DEFAULT_RETRY_POLICY.nodeLostRetries, parseNonNegativeInteger, env),
    retainMs: resolveOption(flags.retain, 'TITAN_MASTER_RETAIN', 24 * 3_600_000, parseDuration, env),
    evictGraceMs: resolveOption(flags.evictGrace, 'TITAN_MASTER_EVICT_GRACE', 10_000, parseDuration, env),
    minRuntimeMs: resolveOption(flags.minRuntime, 'TITAN_MASTER_MIN_RUNTIME', 0, parseDuration, env),
    retainJobs: resolveOption(flags.retainJobs, 'TITAN_MASTER_RETAIN_JOBS', 10_000, parseNonNegativeInteger, env),
    retentionIntervalMs: resolveOption(flags.retentionInterval, 'TITAN_MASTER_RETENTION_INTERVAL', 60_000, parsePositiveDuration, env),
    compactHistoryMs: resolveOption(flags.compactHistory, 'TITAN_MASTER_COMPACT_HISTORY', DEFAULT_COMPACT_HISTORY_MS, parseCompactHistory, env),
    startDeadlineMs: resolveOption(flags.startDeadline, 'TITAN_MASTER_START_DEADLINE', DEFAULT_START_DEADLINE_MS, parsePositiveDuration, env),
    etcdQuotaBytes: resolveOption(flags.etcdQuotaBytes, 'TITAN_MASTER_ETCD_QUOTA_BYTES', DEFAULT_ETCD_QUOTA_BYTES, parseMemory, env),
    storageCheckMs: 10_000,
    ...apiOf(flags, env),
  };
}

/** `--listen` (loopback unless told otherwise) with `--tls-cert`/`--tls-key` both or neither. */
function apiOf(flags: MasterFlags, env: NodeJS.ProcessEnv): Pick<MasterConfig, 'api'> {
  const listen = resolveOption<string | undefined>(flags.listen, 'TITAN_MASTER_LISTEN', undefined, (t) => t.trim(), env);
  const certFile = resolveOption<string | undefined>(flags.tlsCert, 'TITAN_MASTER_TLS_CERT', undefined, (t) => t, env);
  const keyFile = resolveOption<string | undefined>(flags.tlsKey, 'TITAN_MASTER_TLS_KEY', undefined, (t) => t, env);
  if ((certFile === undefined) !== (keyFile === undefined)) throw invalidInput(certFile ? '--tls-key' : '--tls-cert', 'give --tls-cert and --tls-key together');
  if (listen === undefined) {
    if (certFile !== undefined) throw invalidInput('--listen', '--tls-cert is for the API listener: give --listen too');
    return {};
  }
  parseListen(listen, '--listen');
  return { api: { listen, ...(certFile && keyFile ? { tls: { certFile, keyFile } } : {}) } };
}

function parseCompactHistory(text: string, field: string): number {
  return text.trim() === 'off' ? 0 : parsePositiveDuration(text, field);
}

function parsePositiveDuration(text: string, field: string): number {
  const ms = parseDuration(text, field);
  if (ms <= 0) throw invalidInput(field, 'must be more than zero');
  return ms;
}
