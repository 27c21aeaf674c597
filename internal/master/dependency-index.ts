import {
  arrayIdOfTaskId,
  arrayParentState,
  dependencyParents,
  dependencyVerdict,
  type Dependency,
  type DependencyVerdict,
  type ParentState,
  type ParentTally,
} from '../../pkg/model/index.js';

/** A pending job that waits for others (`--after`, before its first placement). */
interface Dependent {
  after: readonly Dependency[];
  verdict: DependencyVerdict;
}

/**
 * A job some pending job waits for: one job, or an array standing for all of
 * its tasks (its `state` folded from theirs: arrayParentState).
 */
interface Parent {
  /** Undefined until seen (a watch event, a listing or a read). */
  state: ParentState | undefined;
  /** The etcd revision the state was seen at: an older sighting never replaces a newer one. */
  revision: number;
  /** The pending jobs waiting for it. */
  dependents: Set<string>;
}

/** What a change of parents did to their dependents. */
export interface DependencyChanges {
  /** Every condition now holds: these jobs may be placed. */
  released: readonly string[];
  /** A condition can never hold: the job is to be cancelled (see `doomed`). */
  doomed: number;
  /** Still waiting, for fewer jobs: the reason changes (see `reasonsDue`). */
  narrowed: number;
}

/** What the index knows of an array named as a parent: each task's state, and their tally. */
interface ArrayTasks {
  /** Tasks as seen (a removed one as gone), each at the revision it was seen at. */
  tasks: Map<string, { state: ParentState; revision: number }>;
  tally: ParentTally;
  /** The array's size; 0 until its tasks were read (observeArray). */
  count: number;
}

/** What a read of an array's tasks found (Store.getArrayTaskStates). */
export interface ArrayListing {
  count: number;
  tasks: readonly { id: string; state: ParentState; revision: number }[];
  /** The revision the read saw. */
  revision: number;
}

const NO_CHANGES: DependencyChanges = Object.freeze({ released: Object.freeze([]), doomed: 0, narrowed: 0 });

/**
 * The master's index of job dependencies: pending jobs that wait for others,
 * by id, and for each job they name (a parent) its known state and who waits
 * for it. When a parent's state changes only its own dependents are looked
 * at: O(dependents) per ended job, however many jobs wait in all. Pure: the
 * master feeds it from its jobs informer (ClusterState) and from reads of
 * parents it has not seen (`takeUnread`), and cancels what it finds `doomed`.
 *
 * A dependent stays indexed until it leaves the queue, released or not, so
 * its parents are known for as long as it is pending: retention keeps them
 * (`isParent`), and a master that starts while the job waits to be placed
 * finds the same outcome.
 */
export class DependencyIndex {
  private readonly dependents = new Map<string, Dependent>();
  private readonly parents = new Map<string, Parent>();
  /** Parents that are arrays: their tasks. Events for tasks are kept from the start, folded once the array was read. */
  private readonly arrays = new Map<string, ArrayTasks>();
  /** Parents whose state nothing has shown yet: to be read. */
  private readonly unread = new Set<string>();
  /** Dependents whose conditions can never all hold, until they leave the queue (the leader cancels them). */
  readonly doomed = new Set<string>();
  /** Dependents still waiting whose reason may differ from the stored one (new, or now waiting for fewer jobs): the master writes it. */
  readonly reasonsDue = new Set<string>();
  /** Verdicts worked out so far (what a change of parents cost). */
  evaluations = 0;

  /** Pending jobs that wait for others. */
  get size(): number {
    return this.dependents.size;
  }

  /** Whether a pending job waits for this one, or for the array it is a task of. */
  isParent(id: string): boolean {
    return this.parents.has(id) || this.parentArrayOf(id) !== undefined;
  }

  /** The array a task belongs to, if a pending job waits for that array. */
  private parentArrayOf(id: string): string | undefined {
    const arrayId = arrayIdOfTaskId(id);
    return arrayId !== undefined && this.parents.has(arrayId) ? arrayId : undefined;
  }

  hasParents(): boolean {
    return this.parents.size > 0;
  }

  /** Where a dependent stands; undefined for a job the index does not hold. */
  verdictOf(id: string): DependencyVerdict | undefined {
    return this.dependents.get(id)?.verdict;
  }

  /** Why a dependent may not be placed yet; undefined once its conditions all hold (or for a job the index does not hold). */
  reasonOf(id: string): string | undefined {
    const verdict = this.dependents.get(id)?.verdict;
    return verdict === undefined || verdict.kind === 'satisfied' ? undefined : verdict.reason;
  }

  /** A pending job with conditions joins (again: a no-op, as conditions never change). Parents not seen yet are to be read. */
  add(id: string, after: readonly Dependency[]): DependencyVerdict {
    const known = this.dependents.get(id);
    if (known) return known.verdict;
    for (const parentId of dependencyParents(after)) {
      let parent = this.parents.get(parentId);
      if (!parent) {
        parent = { state: undefined, revision: 0, dependents: new Set() };
        this.parents.set(parentId, parent);
        this.unread.add(parentId);
      }
      parent.dependents.add(id);
    }
    const dependent: Dependent = { after, verdict: this.evaluate(after) };
    this.dependents.set(id, dependent);
    if (dependent.verdict.kind === 'never') this.doomed.add(id);
    // Its stored reason may say something else (a job back from titan retry): the master compares.
    if (dependent.verdict.kind === 'waiting') this.reasonsDue.add(id);
    return dependent.verdict;
  }

  /** A job left the queue (placed, cancelled, gone): forgotten, with parents no one else waits for. */
  remove(id: string): void {
    const dependent = this.dependents.get(id);
    if (!dependent) return;
    this.dependents.delete(id);
    this.doomed.delete(id);
    this.reasonsDue.delete(id);
    for (const parentId of dependencyParents(dependent.after)) {
      const parent = this.parents.get(parentId);
      if (!parent) continue;
      parent.dependents.delete(id);
      if (parent.dependents.size === 0) {
        this.parents.delete(parentId);
        this.arrays.delete(parentId);
        this.unread.delete(parentId);
      }
    }
  }

  clear(): void {
    this.dependents.clear();
    this.parents.clear();
    this.arrays.clear();
    this.unread.clear();
    this.doomed.clear();
    this.reasonsDue.clear();
  }

  /**
   * A parent's state as seen at `revision`, or a task's of an array that is
   * a parent: its dependents (only they) are looked at again. A sighting
   * older than the one held is ignored, so reads and watch events may arrive
   * in any order.
   */
  observe(id: string, state: ParentState, revision: number): DependencyChanges {
    // A task may be waited for itself (ID[7]) and as one of its array's.
    const arrayId = this.parentArrayOf(id);
    const asTask = arrayId === undefined ? NO_CHANGES : this.observeTask(arrayId, id, state, revision);
    const parent = this.parents.get(id);
    if (!parent || this.arrays.has(id) || (parent.state !== undefined && revision <= parent.revision)) return asTask;
    this.unread.delete(id);
    return merged(asTask, this.settle(parent, state, revision));
  }

  /**
   * What a read of an array named as a parent found: its tasks' states
   * folded into the array's, from now on kept up by its tasks' events. A
   * task held from an older event that the read no longer found was removed.
   */
  observeArray(arrayId: string, listing: ArrayListing): DependencyChanges {
    const parent = this.parents.get(arrayId);
    if (!parent) return NO_CHANGES;
    const array = this.arrayTasks(arrayId);
    const found = new Set<string>();
    for (const task of listing.tasks) {
      found.add(task.id);
      this.setTask(array, task.id, task.state, task.revision);
    }
    for (const [id, held] of array.tasks) if (!found.has(id) && held.revision < listing.revision) this.setTask(array, id, 'gone', listing.revision);
    array.count = listing.count;
    this.unread.delete(arrayId);
    return this.settle(parent, arrayParentState(array.count, array.tally), listing.revision);
  }

  private observeTask(arrayId: string, taskId: string, state: ParentState, revision: number): DependencyChanges {
    const array = this.arrayTasks(arrayId);
    if (!this.setTask(array, taskId, state, revision) || array.count === 0) return NO_CHANGES;
    return this.settle(this.parents.get(arrayId) as Parent, arrayParentState(array.count, array.tally), revision);
  }

  private arrayTasks(arrayId: string): ArrayTasks {
    let array = this.arrays.get(arrayId);
    if (!array) {
      array = { tasks: new Map(), tally: {}, count: 0 };
      this.arrays.set(arrayId, array);
    }
    return array;
  }

  /** A task's state as seen at `revision`; false when an equal or newer sighting is held. */
  private setTask(array: ArrayTasks, taskId: string, state: ParentState, revision: number): boolean {
    const held = array.tasks.get(taskId);
    if (held && held.revision >= revision) return false;
    if (held) array.tally[held.state] = (array.tally[held.state] ?? 1) - 1;
    array.tally[state] = (array.tally[state] ?? 0) + 1;
    array.tasks.set(taskId, { state, revision });
    return true;
  }

  /** The parent is now in `state`: its dependents' verdicts are worked out again. */
  private settle(parent: Parent, state: ParentState, revision: number): DependencyChanges {
    const before = parent.state;
    parent.state = state;
    parent.revision = Math.max(parent.revision, revision);
    if (before === state) return NO_CHANGES;
    const released: string[] = [];
    const changes = { released, doomed: 0, narrowed: 0 };
    for (const id of parent.dependents) {
      const dependent = this.dependents.get(id) as Dependent;
      const old = dependent.verdict;
      const verdict = this.evaluate(dependent.after);
      dependent.verdict = verdict;
      this.reasonsDue.delete(id);
      if (verdict.kind === 'never') {
        if (old.kind !== 'never') changes.doomed++;
        this.doomed.add(id);
        continue;
      }
      this.doomed.delete(id);
      if (verdict.kind === 'satisfied') {
        if (old.kind !== 'satisfied') released.push(id);
      } else if (old.kind !== 'waiting' || old.reason !== verdict.reason) {
        changes.narrowed++;
        this.reasonsDue.add(id);
      }
    }
    return changes;
  }

  /** Up to `max` parents nothing has shown yet, now taken to be read (unreadAgain if the read fails). */
  takeUnread(max: number): string[] {
    const out: string[] = [];
    for (const id of this.unread) {
      if (out.length >= max) break;
      out.push(id);
    }
    for (const id of out) this.unread.delete(id);
    return out;
  }

  /** A read of these parents failed: those still unseen are to be read again. */
  unreadAgain(ids: readonly string[]): void {
    for (const id of ids) {
      const parent = this.parents.get(id);
      if (parent && parent.state === undefined) this.unread.add(id);
    }
  }

  hasUnread(): boolean {
    return this.unread.size > 0;
  }

  private evaluate(after: readonly Dependency[]): DependencyVerdict {
    this.evaluations++;
    return dependencyVerdict(after, (id) => this.parents.get(id)?.state);
  }
}

function merged(a: DependencyChanges, b: DependencyChanges): DependencyChanges {
  if (!anyChange(a)) return b;
  return anyChange(b) ? { released: [...a.released, ...b.released], doomed: a.doomed + b.doomed, narrowed: a.narrowed + b.narrowed } : a;
}

export function anyChange(c: DependencyChanges): boolean {
  return c.released.length + c.doomed + c.narrowed > 0;
}
