import { parseJobRef } from './array.js';
import { invalidInput, type TitanError } from './errors.js';
import type { JobState } from './job.js';

/**
 * Job dependencies (`titan submit --after ok:ID`), Slurm's afterok,
 * afternotok and afterany: a job waits, Pending, until every condition
 * holds; one that can no longer hold cancels it (DependencyNeverSatisfied).
 * The conditions and what a parent's state means for them live here; the
 * master's index (internal/master/dependency-index.ts) applies them.
 */
export const DEPENDENCY_CONDITIONS = ['ok', 'notok', 'any'] as const;
export type DependencyCondition = (typeof DEPENDENCY_CONDITIONS)[number];

/** One `--after` condition: it holds once it holds for every job named. */
export interface Dependency {
  condition: DependencyCondition;
  jobs: string[];
}

/**
 * Most jobs one job may wait for. Each is a compare in the transaction that
 * creates the job (the parent must exist), and a gang's replicas (up to 63)
 * are created in one transaction of at most 128 compares.
 */
export const MAX_DEPENDENCIES = 32;

/** What a parent id may be: job ids (and older or hand-made ones); never a `/`, which would leave the jobs' key space. */
const PARENT_ID = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * `--after` values (`ok:ID[,ID...]`, `notok:ID`, `any:ID`; each flag one
 * condition, repeatable; an ID an array's, meaning all of its tasks, or
 * `ID[7]` one task) into conditions: one per kind, in the order first
 * given, ids without repeats. Throws InvalidInput naming `field`.
 */
export function parseAfter(value: string | readonly string[], field = 'after'): Dependency[] {
  const items = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(items)) throw invalidInput(field, 'must be a condition like ok:ID or a list of them');
  const byCondition = new Map<DependencyCondition, Set<string>>();
  for (const item of items) {
    if (typeof item !== 'string') throw invalidInput(field, 'must be a condition like ok:ID or a list of them');
    const colon = item.indexOf(':');
    const condition = item.slice(0, colon).trim().toLowerCase();
    if (colon < 0 || !(DEPENDENCY_CONDITIONS as readonly string[]).includes(condition)) {
      throw invalidInput(field, `"${item}" is not ok:ID[,ID...], notok:ID[,ID...] or any:ID[,ID...]`);
    }
    const ids = item
      .slice(colon + 1)
      .split(',')
      .map((id) => id.trim())
      // One task of an array as users name it everywhere: ID[7].
      .map((id) => (id.includes('[') ? parseJobRef(id, field).id : id));
    const bad = ids.find((id) => !PARENT_ID.test(id));
    if (bad !== undefined) throw invalidInput(field, `"${item}": ${bad === '' ? 'a job id is missing' : `"${bad}" is not a job id`}`);
    const set = byCondition.get(condition as DependencyCondition) ?? new Set<string>();
    for (const id of ids) set.add(id);
    byCondition.set(condition as DependencyCondition, set);
  }
  const after = [...byCondition].map(([condition, jobs]) => ({ condition, jobs: [...jobs] }));
  const ok = new Set(after.find((d) => d.condition === 'ok')?.jobs);
  const both = after.find((d) => d.condition === 'notok')?.jobs.find((id) => ok.has(id));
  if (both !== undefined) throw invalidInput(field, `job ${both} is named under ok and notok: no outcome satisfies both`);
  const count = dependencyParents(after).length;
  if (count > MAX_DEPENDENCIES) throw invalidInput(field, `${count} jobs named; a job may wait for at most ${MAX_DEPENDENCIES}`);
  if (count === 0) throw invalidInput(field, 'names no job');
  return after;
}

/** The refusal of a job that names one that does not exist (or that the submitter may not see). */
export function unknownDependency(id: string): TitanError {
  return invalidInput('after', `no job ${id} (see titan list): a job can only wait for jobs that exist`);
}

/** Every job the conditions name, once. */
export function dependencyParents(after: readonly Dependency[]): string[] {
  return [...new Set(after.flatMap((d) => d.jobs))];
}

/** `ok:a,b any:c`: the conditions as `--after` takes them. */
export function formatDependencies(after: readonly Dependency[]): string {
  return after.map((d) => `${d.condition}:${d.jobs.join(',')}`).join(' ');
}

/** The reason of a job waiting for `after` (the conditions not yet met). */
export function dependencyReason(after: readonly Dependency[]): string {
  return `Dependency: waits for ${formatDependencies(after)}`;
}

/** What a dependent knows of one parent: its state, `gone` once its record was removed, undefined while unknown. */
export type ParentState = JobState | 'gone';

/** How many of an array's tasks are seen in each state. */
export type ParentTally = Partial<Record<ParentState, number>>;

/**
 * An array named as a parent stands for all of its tasks, as one job that
 * ends when the last of them ends: Succeeded when every task succeeded,
 * else Failed (some task failed), Cancelled (some task was cancelled) or,
 * when tasks were removed before their end was seen, gone. `count` is the
 * array's size; tasks never seen (fewer than `count` in the tally) were removed.
 */
export function arrayParentState(count: number, tally: ParentTally): ParentState {
  const n = (state: ParentState): number => tally[state] ?? 0;
  if (n('Pending') + n('Scheduled') + n('Running') > 0) return 'Running';
  if (n('Failed') > 0) return 'Failed';
  if (n('Cancelled') > 0) return 'Cancelled';
  return n('gone') > 0 || n('Succeeded') < count ? 'gone' : 'Succeeded';
}

/** Whether a condition holds for a parent in `state`: true, false (it never will), undefined (not yet: the parent has not ended). */
export function conditionHolds(condition: DependencyCondition, state: ParentState | undefined): boolean | undefined {
  if (state === undefined || state === 'Pending' || state === 'Scheduled' || state === 'Running') return undefined;
  // A removed parent had ended (retention removes only ended jobs), but how is no longer known.
  if (state === 'gone') return condition === 'any';
  if (condition === 'any') return true;
  return (state === 'Succeeded') === (condition === 'ok');
}

export type DependencyVerdict =
  /** Every condition holds: the job may be placed. */
  | { kind: 'satisfied' }
  /** Some parents have not ended: `reason` names the conditions still open. */
  | { kind: 'waiting'; reason: string }
  /** A condition can never hold: the job is cancelled with `reason`. */
  | { kind: 'never'; reason: string };

/**
 * Where a dependent stands, given what is known of each parent's state.
 * Conditions only matter before a job's first placement: a job requeued
 * after it ran (retry, eviction, lost node) had them met already.
 */
export function dependencyVerdict(after: readonly Dependency[], stateOf: (jobId: string) => ParentState | undefined): DependencyVerdict {
  const open: Dependency[] = [];
  for (const dep of after) {
    const left: string[] = [];
    for (const id of dep.jobs) {
      const state = stateOf(id);
      const holds = conditionHolds(dep.condition, state);
      if (holds === false) {
        const what = state === 'gone' ? 'was removed before its end was seen' : state;
        return { kind: 'never', reason: `DependencyNeverSatisfied: ${dep.condition}:${id}, but job ${id} ${what}` };
      }
      if (holds === undefined) left.push(id);
    }
    if (left.length > 0) open.push({ condition: dep.condition, jobs: left });
  }
  return open.length > 0 ? { kind: 'waiting', reason: dependencyReason(open) } : { kind: 'satisfied' };
}
