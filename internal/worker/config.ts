import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_PREFIX, resolveOption } from '../../pkg/config/env.js';
import { checkNodeIdentity, resolveEtcdConnection, type EtcdConnection, type EtcdConnectionFlags } from '../../pkg/config/etcd-connection.js';
import {
  invalidInput,
  parseCpu,
  parseKeyValues,
  parseDuration,
  parseMemory,
  parseNonNegativeInteger,
  parsePositiveInteger,
  DEFAULT_PORT_RANGE,
  DEFAULT_RETRY_POLICY,
  type ExecutorKind,
  type GpuDevice,
  type PortRange,
} from '../../pkg/model/index.js';
import { parseListen } from '../api/listen.js';
import { DEFAULT_PULL_TIMEOUT_MS } from './docker-execution.js';
import { detectGpus } from './gpu-detect.js';
import {
  DEFAULT_CAP_ALLOWLIST,
  DEFAULT_PIDS_LIMIT,
  formatUserIds,
  parseBool,
  parseCapList,
  parseExecutors,
  parsePidsLimit,
  parseUserIds,
  type ContainerBox,
  type UserIds,
} from './container-box.js';

/** Command-line flags as commander hands them over: raw text, validated here. */
export interface WorkerFlags extends EtcdConnectionFlags {
  prefix?: string;
  nodeId?: string;
  cpu?: string;
  memory?: string;
  gpus?: string;
  label?: string[];
  ttl?: string;
  maxLog?: string;
  jobLogBudget?: string;
  network?: string;
  /** auto | on | off */
  docker?: string;
  /** SIGTERM → SIGKILL grace for timed-out jobs, e.g. 10s. */
  stopGrace?: string;
  stateDir?: string;
  nodeLostRetries?: string;
  parallelStarts?: string;
  /** docker, shell or both, comma-separated. */
  executors?: string;
  capAllowlist?: string;
  pidsLimit?: string;
  jobUser?: string;
  /** commander gives true for the bare flag. */
  readonlyRootfs?: boolean | string;
  shellUser?: string;
  pullTimeout?: string;
  /** host:port of the Prometheus /metrics listener. */
  metricsListen?: string;
  /** first-last: the ports gang replicas get here. */
  portRange?: string;
  /** The IP or hostname gang peers reach this node's jobs at. */
  advertiseAddr?: string;
}

export type DockerMode = 'auto' | 'on' | 'off';

export interface WorkerConfig {
  endpoints: string[];
  /** Endpoints, TLS and credentials: what the Store connects with. */
  etcd: EtcdConnection;
  prefix: string;
  nodeId: string;
  hostname: string;
  /** Where gang peers reach this node's jobs (stored in the node record); default the hostname. */
  advertiseAddr: string;
  /** The ports gang replicas get here, one each while it runs (stored in the node record). */
  portRange: PortRange;
  /** Millicores this node offers. */
  cpu: number;
  /** Bytes this node offers. */
  memory: number;
  gpus: GpuDevice[];
  labels: Record<string, string>;
  /** Lease TTL of the node registration. */
  ttlSeconds: number;
  /** Output kept per job attempt; more is dropped with a marker. */
  maxLogBytes: number;
  /** Output kept per job across all its attempts (a job retried many times must not fill etcd). */
  jobLogBudgetBytes: number;
  /** Docker NetworkMode for job containers; undefined = Docker's default. */
  network?: string;
  docker: DockerMode;
  logFlushMs: number;
  logChunkBytes: number;
  /** How long a run stopped by the worker (timeout) gets between SIGTERM and SIGKILL. */
  stopGraceMs: number;
  /** Where the run journal lives (pids of shell runs, outcomes not yet recorded): must survive a worker restart. */
  stateDir: string;
  /** Attempts lost with the node are retried this often; the same value as the masters' (TITAN_NODE_LOST_RETRIES). */
  nodeLostRetries: number;
  /** Container creates and starts sent to the engine at once. */
  parallelStarts: number;
  /** Kinds of jobs this node runs (shell jobs only when asked for: they run on the host). */
  executors: ExecutorKind[];
  /** How job containers are confined (container-box.ts). */
  box: ContainerBox;
  /** Shell jobs run as this user; undefined: as the worker's. */
  shellUser?: UserIds;
  /** An image pull that takes longer fails the run with reason ImagePullTimeout. */
  pullTimeoutMs: number;
  /** Where GET /metrics and /healthz are served; undefined: not served. */
  metricsListen?: { host: string; port: number };
}

export const DEFAULT_TTL_SECONDS = 10;
export const DEFAULT_MAX_LOG_BYTES = 8 * 2 ** 20;
/** Two attempts at the full per-attempt cap; later attempts keep what is left. */
export const DEFAULT_JOB_LOG_BUDGET_BYTES = 16 * 2 ** 20;
export const DEFAULT_LOG_FLUSH_MS = 100;
export const DEFAULT_LOG_CHUNK_BYTES = 64 * 2 ** 10;
export const DEFAULT_STOP_GRACE_MS = 10_000;
/** What Docker gets through fastest on a small host; a bulk submit's hundred starts at once ran 5-10% slower (docs/benchmarks.md). */
export const DEFAULT_PARALLEL_STARTS = 8;

/**
 * Per node, so several workers on one host keep apart; never in a shared
 * temporary directory, where another user could plant a journal entry first:
 * /var/lib/titan/worker-<node> for root, else $XDG_STATE_HOME/titan/worker-<node>
 * (~/.local/state when unset). RunJournal.open() makes it 0700 and refuses one
 * that others could write.
 */
export function defaultStateDir(nodeId: string, env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return path.join('/var/lib/titan', `worker-${nodeId}`);
  const base = env.XDG_STATE_HOME?.startsWith('/') ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'titan', `worker-${nodeId}`);
}

function parsePositiveDuration(text: string, field: string): number {
  const ms = parseDuration(text, field);
  if (ms <= 0) throw invalidInput(field, 'must be more than zero');
  return ms;
}

function parseStateDir(text: string, field: string): string {
  const dir = text.trim();
  if (dir === '') throw invalidInput(field, 'must name a directory');
  return path.resolve(dir);
}

/** One key segment: the node id is part of etcd keys and container labels. */
function parseNodeId(text: string, field: string): string {
  const id = text.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(id)) {
    throw invalidInput(field, `"${text}" must be 1-63 letters, digits, '.', '_' or '-'`);
  }
  return id;
}

function parsePrefix(text: string, field: string): string {
  const prefix = text.trim();
  if (!/^\/[^\s]*$/.test(prefix)) throw invalidInput(field, `"${text}" must start with / and hold no spaces`);
  return prefix;
}

function parseTtl(text: string, field: string): number {
  const ttl = parsePositiveInteger(text, field);
  // The worker stops claiming work 1 s before the lease could lapse; a 1 s lease leaves no window.
  if (ttl < 2) throw invalidInput(field, 'must be at least 2 seconds');
  return ttl;
}

function parseDockerMode(text: string, field: string): DockerMode {
  const mode = text.trim();
  if (mode !== 'auto' && mode !== 'on' && mode !== 'off') throw invalidInput(field, `"${text}" is not auto, on or off`);
  return mode;
}

function parseNetwork(text: string, field: string): string {
  const network = text.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/.test(network)) throw invalidInput(field, `"${text}" is not a Docker network mode`);
  return network;
}

/** `first-last`, both ends included, within 1-65535 (a single port is `N-N`). */
export function parsePortRange(text: string, field: string): PortRange {
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(text);
  const first = m ? Number(m[1]) : NaN;
  const last = m ? Number(m[2]) : NaN;
  if (!m || first < 1 || last > 65535 || first > last) {
    throw invalidInput(field, `"${text}" is not a port range first-last within 1-65535, e.g. ${DEFAULT_PORT_RANGE.first}-${DEFAULT_PORT_RANGE.last}`);
  }
  return { first, last };
}

/** An IPv4 or IPv6 address, or a hostname (RFC 1123 labels): what peers connect to, so no port, scheme or spaces. */
export function parseAdvertiseAddr(text: string, field: string): string {
  const addr = text.trim();
  const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  const hostname = addr.length <= 253 && addr.split('.').every((l) => label.test(l)) && !/^[\d.]+$/.test(addr);
  if (net.isIP(addr) === 0 && !hostname) {
    throw invalidInput(field, `"${text}" is not an IP address or a hostname (e.g. 10.0.0.5 or gpu-01.example)`);
  }
  return addr;
}

/** A GPU the node declares without asking a driver: its index is its device id. */
function declaredGpu(index: number): GpuDevice {
  return { index, uuid: '', model: 'unknown', memory: 0 };
}

/** `none`, a count (`4` → indexes 0-3) or a list of indexes (`0,2`). */
export function parseGpuFlag(text: string, field: string): GpuDevice[] {
  const value = text.trim();
  if (value === 'none' || value === '0') return [];
  if (/^\d+$/.test(value)) return Array.from({ length: Number(value) }, (_, i) => declaredGpu(i));
  const parts = value.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^\d+$/.test(p))) {
    throw invalidInput(field, `"${text}" is not none, a GPU count (4) or a list of GPU indexes (0,2)`);
  }
  const indexes = parts.map(Number);
  if (new Set(indexes).size !== indexes.length) throw invalidInput(field, `"${text}" lists a GPU twice`);
  return indexes.sort((a, b) => a - b).map(declaredGpu);
}

function parseLabelList(text: string, field: string): Record<string, string> {
  const pairs = text.split(',').map((p) => p.trim()).filter(Boolean);
  return parseKeyValues(pairs, field);
}

/** Which kinds of jobs run here, and how they are confined (docs/security.md, "Jobs in their box"). */
function resolveJobConfinement(flags: WorkerFlags, env: NodeJS.ProcessEnv): Pick<WorkerConfig, 'executors' | 'box' | 'shellUser'> {
  const executors = resolveOption<ExecutorKind[]>(flags.executors, 'TITAN_WORKER_EXECUTORS', ['docker'], parseExecutors, env);
  const jobUser = resolveOption<UserIds | undefined>(flags.jobUser, 'TITAN_WORKER_JOB_USER', undefined, parseUserIds, env);
  const readonlyFlag = flags.readonlyRootfs === true ? 'true' : flags.readonlyRootfs === false ? undefined : flags.readonlyRootfs;
  const box: ContainerBox = {
    capAdd: resolveOption(flags.capAllowlist, 'TITAN_WORKER_CAP_ALLOWLIST', [...DEFAULT_CAP_ALLOWLIST], parseCapList, env),
    pidsLimit: resolveOption(flags.pidsLimit, 'TITAN_WORKER_PIDS_LIMIT', DEFAULT_PIDS_LIMIT, parsePidsLimit, env),
    readonlyRootfs: resolveOption(readonlyFlag, 'TITAN_WORKER_READONLY_ROOTFS', false, parseBool, env),
    ...(jobUser !== undefined ? { user: formatUserIds(jobUser) } : {}),
  };
  const shellUser = resolveOption<UserIds | undefined>(flags.shellUser, 'TITAN_WORKER_SHELL_USER', undefined, parseUserIds, env);
  if (shellUser === undefined) return { executors, box };
  if (!executors.includes('shell')) throw invalidInput('--shell-user', 'shell jobs are off on this worker: add shell to --executors');
  const ownUid = process.getuid?.();
  if (ownUid !== undefined && ownUid !== 0 && ownUid !== shellUser.uid) {
    throw invalidInput('--shell-user', `the worker runs as uid ${ownUid} and cannot run jobs as uid ${shellUser.uid}: start it as root, or leave --shell-user out`);
  }
  return { executors, box, shellUser };
}

/** One validated config: flags over environment over defaults. Async only for GPU detection. */
export async function resolveWorkerConfig(flags: WorkerFlags, env: NodeJS.ProcessEnv = process.env): Promise<WorkerConfig> {
  const labels =
    flags.label !== undefined && flags.label.length > 0
      ? parseKeyValues(flags.label, '--label')
      : resolveOption<Record<string, string>>(undefined, 'TITAN_WORKER_LABELS', {}, parseLabelList, env);
  const network = resolveOption<string | undefined>(flags.network, 'TITAN_WORKER_NETWORK', undefined, parseNetwork, env);
  const declaredGpus = resolveOption<GpuDevice[] | undefined>(flags.gpus, 'TITAN_WORKER_GPUS', undefined, parseGpuFlag, env);
  const nodeId =
    resolveOption<string | undefined>(flags.nodeId, 'TITAN_NODE_ID', undefined, parseNodeId, env) ??
    parseNodeId(os.hostname(), 'hostname (set --node-id)');
  const etcd = resolveEtcdConnection(flags, env);
  checkNodeIdentity(etcd, nodeId);
  const config: WorkerConfig = {
    endpoints: etcd.endpoints,
    etcd,
    prefix: resolveOption(flags.prefix, 'TITAN_PREFIX', DEFAULT_PREFIX, parsePrefix, env),
    nodeId,
    hostname: os.hostname(),
    advertiseAddr: resolveOption(flags.advertiseAddr, 'TITAN_WORKER_ADVERTISE_ADDR', os.hostname(), parseAdvertiseAddr, env),
    portRange: resolveOption<PortRange>(flags.portRange, 'TITAN_WORKER_PORT_RANGE', { ...DEFAULT_PORT_RANGE }, parsePortRange, env),
    cpu: resolveOption(flags.cpu, 'TITAN_WORKER_CPU', os.cpus().length * 1000, parseCpu, env),
    memory: resolveOption(flags.memory, 'TITAN_WORKER_MEMORY', os.totalmem(), parseMemory, env),
    gpus: [],
    labels,
    ...resolveJobConfinement(flags, env),
    ttlSeconds: resolveOption(flags.ttl, 'TITAN_WORKER_TTL', DEFAULT_TTL_SECONDS, parseTtl, env),
    maxLogBytes: resolveOption(flags.maxLog, 'TITAN_WORKER_MAX_LOG', DEFAULT_MAX_LOG_BYTES, parseMemory, env),
    jobLogBudgetBytes: resolveOption(flags.jobLogBudget, 'TITAN_WORKER_JOB_LOG_BUDGET', DEFAULT_JOB_LOG_BUDGET_BYTES, parseMemory, env),
    docker: resolveOption<DockerMode>(flags.docker, 'TITAN_WORKER_DOCKER', 'auto', parseDockerMode, env),
    logFlushMs: DEFAULT_LOG_FLUSH_MS,
    logChunkBytes: DEFAULT_LOG_CHUNK_BYTES,
    stopGraceMs: resolveOption(flags.stopGrace, 'TITAN_WORKER_STOP_GRACE', DEFAULT_STOP_GRACE_MS, parseDuration, env),
    stateDir: resolveOption(flags.stateDir, 'TITAN_WORKER_STATE_DIR', defaultStateDir(nodeId, env), parseStateDir, env),
    nodeLostRetries: resolveOption(
      flags.nodeLostRetries,
      'TITAN_NODE_LOST_RETRIES',
      DEFAULT_RETRY_POLICY.nodeLostRetries,
      parseNonNegativeInteger,
      env,
    ),
    parallelStarts: resolveOption(flags.parallelStarts, 'TITAN_WORKER_PARALLEL_STARTS', DEFAULT_PARALLEL_STARTS, parsePositiveInteger, env),
    pullTimeoutMs: resolveOption(flags.pullTimeout, 'TITAN_WORKER_PULL_TIMEOUT', DEFAULT_PULL_TIMEOUT_MS, parsePositiveDuration, env),
  };
  if (network !== undefined) config.network = network;
  const metricsListen = resolveOption<WorkerConfig['metricsListen']>(flags.metricsListen, 'TITAN_WORKER_METRICS_LISTEN', undefined, parseListen, env);
  if (metricsListen !== undefined) config.metricsListen = metricsListen;
  // Detection runs last, so a bad flag is reported without waiting on nvidia-smi.
  config.gpus = declaredGpus ?? (await detectGpus());
  return config;
}
