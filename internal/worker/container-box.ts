import { invalidInput, parsePositiveInteger, type ExecutorKind } from '../../pkg/model/index.js';

/**
 * What confines a job on this node (docs/security.md, "Jobs in their box"):
 * the capabilities a container keeps, its process cap, the user it runs as,
 * and whether its root filesystem is read-only.
 */
export interface ContainerBox {
  /** Added back after dropping ALL; names without the CAP_ prefix. */
  capAdd: string[];
  /** Most processes and threads in one container: a fork bomb stops here. */
  pidsLimit: number;
  /** Container User (`uid[:gid]`); undefined keeps the image's. */
  user?: string;
  /** Read-only root filesystem, with a writable tmpfs on /tmp for scratch. */
  readonlyRootfs: boolean;
}

/** Docker's default capability set without NET_RAW (raw sockets: ARP/DNS spoofing on the host's networks), as Nomad does. */
export const DEFAULT_CAP_ALLOWLIST: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE',
  'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

/** Enough for any real batch job (a big build runs a few hundred), far below what hurts the host. */
export const DEFAULT_PIDS_LIMIT = 4096;

export const DEFAULT_CONTAINER_BOX: ContainerBox = { capAdd: [...DEFAULT_CAP_ALLOWLIST], pidsLimit: DEFAULT_PIDS_LIMIT, readonlyRootfs: false };

/** Linux capabilities (capabilities(7)), so a typo is an error at start-up and not a failed create per job. */
const LINUX_CAPABILITIES: ReadonlySet<string> = new Set([
  'AUDIT_CONTROL', 'AUDIT_READ', 'AUDIT_WRITE', 'BLOCK_SUSPEND', 'BPF', 'CHECKPOINT_RESTORE', 'CHOWN', 'DAC_OVERRIDE',
  'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'IPC_LOCK', 'IPC_OWNER', 'KILL', 'LEASE', 'LINUX_IMMUTABLE', 'MAC_ADMIN',
  'MAC_OVERRIDE', 'MKNOD', 'NET_ADMIN', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_RAW', 'PERFMON', 'SETFCAP', 'SETGID',
  'SETPCAP', 'SETUID', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_CHROOT', 'SYS_MODULE', 'SYS_NICE', 'SYS_PACCT', 'SYS_PTRACE',
  'SYS_RAWIO', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'SYSLOG', 'WAKE_ALARM',
]);

/** `none`, or capability names (CHOWN or CAP_CHOWN), comma-separated. ALL is refused: that is what an allowlist prevents. */
export function parseCapList(text: string, field: string): string[] {
  const value = text.trim();
  if (value.toLowerCase() === 'none') return [];
  const caps = value.split(',').map((c) => c.trim().toUpperCase().replace(/^CAP_/, '')).filter(Boolean);
  if (caps.length === 0) throw invalidInput(field, 'give capability names (CHOWN,KILL) or none');
  for (const cap of caps) {
    if (cap === 'ALL') throw invalidInput(field, 'ALL is not allowed: list the capabilities jobs need');
    if (!LINUX_CAPABILITIES.has(cap)) throw invalidInput(field, `"${cap}" is not a Linux capability`);
  }
  return [...new Set(caps)];
}

/** A pids limit below this stops ordinary shells and runtimes from starting at all. */
const MIN_PIDS_LIMIT = 16;

export function parsePidsLimit(text: string, field: string): number {
  const limit = parsePositiveInteger(text, field);
  if (limit < MIN_PIDS_LIMIT) throw invalidInput(field, `must be at least ${MIN_PIDS_LIMIT}`);
  return limit;
}

export interface UserIds {
  uid: number;
  gid?: number;
}

/** `uid` or `uid:gid`, numeric: a name would be looked up in each image's (or the host's) own passwd file. */
export function parseUserIds(text: string, field: string): UserIds {
  const match = /^(\d+)(?::(\d+))?$/.exec(text.trim());
  if (!match) throw invalidInput(field, `"${text}" is not uid or uid:gid (numbers, e.g. 65534:65534)`);
  const ids = [match[1], match[2]].filter((n): n is string => n !== undefined).map(Number);
  if (ids.some((n) => n > 2 ** 31 - 1)) throw invalidInput(field, `"${text}" is out of range`);
  return ids[1] === undefined ? { uid: ids[0] } : { uid: ids[0], gid: ids[1] };
}

export function formatUserIds(ids: UserIds): string {
  return ids.gid === undefined ? String(ids.uid) : `${ids.uid}:${ids.gid}`;
}

/** true/false (also 1/0, yes/no) from a flag or an environment variable. */
export function parseBool(text: string, field: string): boolean {
  const value = text.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw invalidInput(field, `"${text}" is not true or false`);
}

const EXECUTOR_KINDS: readonly ExecutorKind[] = ['docker', 'shell'];

/** The kinds of jobs a worker may run: `docker`, `shell` or both, comma-separated. */
export function parseExecutors(text: string, field: string): ExecutorKind[] {
  const kinds = text.split(',').map((k) => k.trim()).filter(Boolean);
  if (kinds.length === 0) throw invalidInput(field, 'name at least one of docker, shell');
  for (const kind of kinds) {
    if (!(EXECUTOR_KINDS as readonly string[]).includes(kind)) throw invalidInput(field, `"${kind}" is not docker or shell`);
  }
  return [...new Set(kinds)] as ExecutorKind[];
}
