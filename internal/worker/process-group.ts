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
