import fs from 'node:fs';
import os from 'node:os';

/**
 * Resource use of a process on this host, from /proc (Linux). The parsers
 * are pure; the readers return undefined where /proc is not available or the
 * process is gone.
 */

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux build that matters). */
const CLOCK_TICKS = 100;

/** VmRSS (or, with field VmHWM, the peak RSS) of a /proc/<pid>/status text, in MiB. */
export function parseRssMiB(statusText: string, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(statusText);
  return match ? Number(match[1]) / 1024 : undefined;
}

/** utime + stime of a /proc/<pid>/stat text, in seconds. The command name may contain spaces and parentheses. */
export function parseCpuSeconds(statText: string): number | undefined {
  const close = statText.lastIndexOf(')');
  if (close < 0) return undefined;
  // After "pid (comm) " come: state(3) ppid(4) ... utime(14) stime(15).
  const fields = statText.slice(close + 2).trim().split(/\s+/);
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / CLOCK_TICKS;
}

function readProc(pid: number | undefined, file: string): string | undefined {
  if (pid === undefined) return undefined;
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

export function rssMiB(pid: number | undefined, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number | undefined {
  const text = readProc(pid, 'status');
  return text === undefined ? undefined : parseRssMiB(text, field);
}

export function cpuSeconds(pid: number | undefined): number | undefined {
  const text = readProc(pid, 'stat');
  return text === undefined ? undefined : parseCpuSeconds(text);
}

/** Every process id in /proc (none where there is no /proc). */
export function processIds(): number[] {
  try {
    return fs
      .readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch {
    return [];
  }
}

/** The child processes of `pid` whose command line contains `marker`, from /proc. */
export function childPidsRunning(pid: number | undefined, marker: string): number[] {
  if (pid === undefined) return [];
  return processIds().filter((child) => {
    const stat = readProc(child, 'stat');
    // After "pid (comm) " comes the state, then the parent's pid.
    const parent = stat === undefined ? undefined : Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return parent === pid && (readProc(child, 'cmdline') ?? '').includes(marker);
  });
}

/** CPU seconds all cores of this host spent busy (everything but idle and iowait) since boot, from /proc/stat. */
export function machineBusySeconds(): number | undefined {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    const busy = user + nice + system + irq + softirq + (steal || 0);
    return Number.isFinite(busy) ? busy / CLOCK_TICKS : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds used by this process (the bench itself, with its simulated nodes). */
export function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

export interface CpuSplit {
  wallSeconds: number;
  /** CPU seconds each process used over the window (undefined: not measurable, e.g. a remote etcd). */
  master?: number;
  etcd?: number;
  bench: number;
  /** The whole host's busy CPU seconds (every process, other tenants' too), of hostCapacity (wallSeconds × cores). */
  host?: number;
  hostCapacity?: number;
}

/** Samples CPU time of the master, etcd and the bench at the start of a phase; `end()` gives the split. */
export function cpuWindow(masterPid: () => number | undefined, etcdPid: number | undefined): { end(): CpuSplit } {
  const startedAt = performance.now();
  const startMaster = cpuSeconds(masterPid());
  const startEtcd = cpuSeconds(etcdPid);
  const startBench = ownCpuSeconds();
  const startHost = machineBusySeconds();
  return {
    end(): CpuSplit {
      const master = cpuSeconds(masterPid());
      const etcd = cpuSeconds(etcdPid);
      const host = machineBusySeconds();
      const wallSeconds = (performance.now() - startedAt) / 1000;
      return {
        wallSeconds,
        // A master started inside the window counts from zero.
        ...(master !== undefined ? { master: master - (startMaster ?? 0) } : {}),
        ...(etcd !== undefined && startEtcd !== undefined ? { etcd: etcd - startEtcd } : {}),
        bench: ownCpuSeconds() - startBench,
        ...(host !== undefined && startHost !== undefined ? { host: host - startHost, hostCapacity: wallSeconds * os.cpus().length } : {}),
      };
    },
  };
}
