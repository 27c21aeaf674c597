/**
 * The chaos check's record of job runs, reported by the jobs themselves
 * ("start"/"done" with job id, attempt and node), and what counts as a
 * duplicate: a job whose work completed twice for one attempt, or whose
 * completed runs overlapped in time on two nodes.
 */
export interface RunEvent {
  kind: 'start' | 'done';
  jobId: string;
  attempt: number;
  node: string;
  at: number;
}

interface Run {
  attempt: number;
  node: string;
  start?: number;
  done?: number;
}

export function parseRunEvent(line: string, at: number): RunEvent | undefined {
  const m = /^(start|done) (\S+) (\d+) (\S+)$/.exec(line.trim());
  if (!m) return undefined;
  return { kind: m[1] as RunEvent['kind'], jobId: m[2], attempt: Number(m[3]), node: m[4], at };
}

export function duplicateRunJobs(events: readonly RunEvent[]): string[] {
  const runsByJob = new Map<string, Run[]>();
  const doneCount = new Map<string, number>();
  for (const e of events) {
    const runs = runsByJob.get(e.jobId) ?? [];
    runsByJob.set(e.jobId, runs);
    let run = runs.find((r) => r.attempt === e.attempt && r.node === e.node && (e.kind === 'start' ? r.start === undefined : r.done === undefined));
    if (!run) {
      run = { attempt: e.attempt, node: e.node };
      runs.push(run);
    }
    if (e.kind === 'start') run.start = e.at;
    else {
      run.done = e.at;
      const key = `${e.jobId}/${e.attempt}`;
      doneCount.set(key, (doneCount.get(key) ?? 0) + 1);
    }
  }
  const duplicates = new Set<string>();
  for (const [key, n] of doneCount) if (n > 1) duplicates.add(key.slice(0, key.indexOf('/')));
  for (const [jobId, runs] of runsByJob) {
    const completed = runs.filter((r) => r.start !== undefined && r.done !== undefined);
    for (let i = 0; i < completed.length; i++) {
      for (let j = i + 1; j < completed.length; j++) {
        const a = completed[i];
        const b = completed[j];
        if (a.node !== b.node && (a.start ?? 0) < (b.done ?? 0) && (b.start ?? 0) < (a.done ?? 0)) duplicates.add(jobId);
      }
    }
  }
  return [...duplicates].sort();
}

/**
 * Dependents that started before a job they wait for had run its last:
 * their first "start" came before a parent's last report (its "done", or
 * the "start" of a run that never finished). `parents` by dependent id; an
 * array parent is all of its tasks.
 */
export function earlyDependents(events: readonly RunEvent[], parents: ReadonlyMap<string, readonly string[]>): string[] {
  const firstStart = new Map<string, number>();
  const lastReport = new Map<string, number>();
  for (const e of events) {
    if (e.kind === 'start' && !firstStart.has(e.jobId)) firstStart.set(e.jobId, e.at);
    lastReport.set(e.jobId, Math.max(lastReport.get(e.jobId) ?? -Infinity, e.at));
  }
  const early: string[] = [];
  for (const [dependent, ids] of parents) {
    const started = firstStart.get(dependent);
    // A parent that never reported ran nothing the dependent could have overtaken... unless it never ran at all: flagged too.
    if (started !== undefined && ids.some((id) => (lastReport.get(id) ?? Infinity) > started)) early.push(dependent);
  }
  return early.sort();
}
