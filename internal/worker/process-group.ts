import fs from 'node:fs';

/**
 * The kernel's start time of a process (field 22 of /proc/<pid>/stat, in
 * clock ticks since boot), or undefined where there is no such process or no
 * /proc. Together with the pid it names one process for good: a pid can be
 * reused, a (pid, start time) pair cannot.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

export type GroupKill = 'killed' | 'gone' | 'not-ours';

/**
 * A pid that can name one process: kill() widens 0 and negative numbers to
 * whole groups or every process, and 1 is init.
 */
export function plausiblePid(pid: unknown): pid is number {
  return typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 1;
}

/**
 * SIGKILLs the process group of a run an earlier worker process journaled,
 * only when the pid still names that very process: its leader is alive with
 * the recorded start time. Anything else (no start time, a dead leader, a
 * reused pid, an implausible pid) is left alone: a journal entry alone never
 * proves a group is ours.
 */
export function killJournaledGroup(pid: unknown, procStart: string | undefined): GroupKill {
  if (!plausiblePid(pid) || procStart === undefined) return 'not-ours';
  const current = processStartTime(pid);
  if (current === undefined) return 'gone';
  if (current !== procStart) return 'not-ours';
  return killProcessGroup(pid, procStart);
}

/**
 * SIGKILLs the process group a shell run started (its leader's pid is the
 * group id). If the leader's pid now belongs to a different process, the
 * group is not ours: Linux does not reuse a number while a group of that id
 * still exists, so a live leader with another start time means our group is
 * gone. A dead leader with members left is still our group, and is killed.
 */
export function killProcessGroup(pid: number, procStart: string | undefined): GroupKill {
  if (!plausiblePid(pid)) return 'not-ours';
  // No group of that id at all (the common end: the job left nothing behind): nothing to read in /proc.
  if (!groupExists(pid)) return 'gone';
  const current = processStartTime(pid);
  if (current !== undefined && procStart !== undefined && current !== procStart) return 'not-ours';
  try {
    process.kill(-pid, 'SIGKILL');
    return 'killed';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH' ? 'gone' : 'not-ours';
  }
}

/** Whether a process group of this id exists (signal 0 checks without sending). */
function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Pids of the processes started with one of these environments: every entry
 * of it in the process's initial environment (/proc/<pid>/environ), which
 * names a run as exactly as its pid would (it holds its job and attempt).
 * Processes this user may not read are not found.
 */
export function processesWithEnv(envs: readonly Record<string, string>[]): number[] {
  // environ holds bytes: compared as latin1, the encoding that maps each byte to one character.
  const wanted = envs.map((env) => Object.entries(env).map(([key, value]) => Buffer.from(`${key}=${value}`).toString('latin1')));
  const found: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let environ: string[];
    try {
      environ = fs.readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0');
    } catch {
      continue;
    }
    const held = new Set(environ);
    if (wanted.some((pairs) => pairs.length > 0 && pairs.every((pair) => held.has(pair)))) found.push(Number(entry));
  }
  return found;
}
