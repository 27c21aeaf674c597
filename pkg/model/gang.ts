import { invalidInput } from './errors.js';
import type { JobSpec } from './job.js';
import { parsePositiveInteger } from './parse.js';

/**
 * Gangs (docs/gangs.md): a group of N replicas placed all-or-nothing. Each
 * replica is an ordinary job carrying this record; the group has no key of
 * its own, so nothing about it can drift from its jobs.
 */
export interface GangSpec {
  /** The group id: the job id of its rank-0 replica. */
  id: string;
  /** 0..size-1. */
  rank: number;
  /** N: how many replicas the group has. */
  size: number;
  /** M: the group starts only when at least this many replicas can be placed at once. */
  minAvailable: number;
  /** A node label key (e.g. `rack`): the replicas prefer nodes sharing one value of it. */
  topology?: string;
}

/** What a submission asks for, before validation (flags or a spec file). */
export interface GangInput {
  replicas?: string | number;
  minAvailable?: string | number;
  topology?: string;
}

/** A validated group request: what every replica's GangSpec shares. */
export interface GangOptions {
  replicas: number;
  minAvailable: number;
  topology?: string;
}

/**
 * Largest gang. A gang's placements commit in ONE etcd transaction (two
 * compares and two puts per replica, plus the leadership guard, within
 * etcd's default 128 ops: MAX_PLACEMENTS_PER_TXN in pkg/store/txn.ts), and
 * its jobs are created in one transaction too. pkg/model cannot import the
 * store, so a unit test pins the two numbers together.
 */
export const MAX_GANG_SIZE = 63;

/** Label keys as `--label` and worker `--label` accept them (parseKeyValues). */
const LABEL_KEY = /^[A-Za-z_][A-Za-z0-9_.\-/]*$/;

/** Validates the gang fields of a submission; undefined when it is not a gang. Throws InvalidInput. */
export function parseGangOptions(input: GangInput): GangOptions | undefined {
  if (input.replicas === undefined) {
    if (input.minAvailable !== undefined) throw invalidInput('minAvailable', '--min-available needs --replicas');
    if (input.topology !== undefined) throw invalidInput('topology', '--topology needs --replicas');
    return undefined;
  }
  const replicas = parsePositiveInteger(input.replicas, 'replicas');
  if (replicas > MAX_GANG_SIZE) {
    throw invalidInput('replicas', `at most ${MAX_GANG_SIZE} replicas per gang (a gang is placed in one etcd transaction); got ${replicas}`);
  }
  const minAvailable = input.minAvailable === undefined ? replicas : parsePositiveInteger(input.minAvailable, 'minAvailable');
  if (minAvailable > replicas) {
    throw invalidInput('minAvailable', `--min-available ${minAvailable} is more than --replicas ${replicas}`);
  }
  const options: GangOptions = { replicas, minAvailable };
  if (input.topology !== undefined) options.topology = parseTopology(input.topology);
  return options;
}

function parseTopology(value: unknown): string {
  const key = typeof value === 'string' ? value.trim() : '';
  if (!LABEL_KEY.test(key)) {
    throw invalidInput('topology', `"${String(value)}" is not a node label key (use a key such as rack, as in titan-worker --label rack=r1)`);
  }
  return key;
}

/** Why a stored gang record is malformed, or undefined when it is sound. */
export function gangProblem(gang: GangSpec): string | undefined {
  const whole = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n);
  if (typeof gang.id !== 'string' || gang.id === '') return 'gang id is missing';
  if (!whole(gang.size) || gang.size < 1 || gang.size > MAX_GANG_SIZE) return `gang size must be 1..${MAX_GANG_SIZE}`;
  if (!whole(gang.minAvailable) || gang.minAvailable < 1 || gang.minAvailable > gang.size) return 'gang minAvailable must be 1..size';
  if (!whole(gang.rank) || gang.rank < 0 || gang.rank >= gang.size) return 'gang rank must be 0..size-1';
  if (gang.topology !== undefined && (typeof gang.topology !== 'string' || !LABEL_KEY.test(gang.topology))) return 'gang topology must be a label key';
  return undefined;
}

/**
 * One spec → the specs of its N replicas, in rank order. Each is a full copy
 * (no shared maps). A named job's replicas are named `<name>-<rank>`.
 * `gangId` must become the rank-0 replica's job id (see GangSpec.id).
 */
export function gangSpecs(spec: JobSpec, gangId: string, options: GangOptions): JobSpec[] {
  const last = `${spec.name}-${options.replicas - 1}`;
  if (spec.name !== '' && last.length > 63) {
    throw invalidInput('name', `"${spec.name}" is too long for a gang: replica names ("${last}") must stay within 63 characters`);
  }
  const specs: JobSpec[] = [];
  for (let rank = 0; rank < options.replicas; rank++) {
    specs.push({
      ...spec,
      name: spec.name === '' ? '' : `${spec.name}-${rank}`,
      env: { ...spec.env },
      labels: { ...spec.labels },
      ...(spec.gpuModels ? { gpuModels: [...spec.gpuModels] } : {}),
      ...(spec.nodeSelector ? { nodeSelector: { ...spec.nodeSelector } } : {}),
      gang: {
        id: gangId,
        rank,
        size: options.replicas,
        minAvailable: options.minAvailable,
        ...(options.topology !== undefined ? { topology: options.topology } : {}),
      },
    });
  }
  return specs;
}

/** Where each placed replica runs, and the port of its node's --port-range it holds; unplaced ranks are simply absent. */
export interface GangMember {
  rank: number;
  nodeId: string;
  port: number;
}

/**
 * TITAN_PEERS for a gang of `size` replicas: `host:port` of every rank, in
 * rank order. host is the node's address (`addresses`: its --advertise-addr,
 * see peerAddressOf; the node id for a node not in it), port the one the
 * replica holds on that node (reserved like any resource, so two replicas on
 * one node never share one). A rank not placed (a gang started with
 * minAvailable < N) is an empty entry. Pure: the master calls it when it
 * builds assignments.
 */
export function gangPeers(
  size: number,
  members: Iterable<GangMember>,
  addresses: ReadonlyMap<string, string> | Readonly<Record<string, string>>,
): string[] {
  const hostOf = (nodeId: string): string => (isMap(addresses) ? addresses.get(nodeId) : addresses[nodeId]) || nodeId;
  const peers = new Array<string>(size).fill('');
  for (const m of members) {
    if (m.rank >= 0 && m.rank < size) peers[m.rank] = joinHostPort(hostOf(m.nodeId), m.port);
  }
  return peers;
}

/** `host:port`, an IPv6 address in brackets (`[fd00::1]:29500`), as URLs and most frameworks write it. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A TITAN_PEERS entry split back (an IPv6 host without its brackets); undefined for an empty or malformed one. */
export function splitHostPort(entry: string): { host: string; port: number } | undefined {
  const colon = entry.lastIndexOf(':');
  if (colon <= 0) return undefined;
  let host = entry.slice(0, colon);
  const port = Number(entry.slice(colon + 1));
  if (!/^\d+$/.test(entry.slice(colon + 1)) || port < 1 || port > 65535) return undefined;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return host === '' ? undefined : { host, port };
}

function isMap(value: ReadonlyMap<string, string> | Readonly<Record<string, string>>): value is ReadonlyMap<string, string> {
  return value instanceof Map;
}
