import type { Assignment, StopCauses } from '../../pkg/model/index.js';

/** What the worker stops a run for: the assignment's cancel, its taking away, the worker stopping with its jobs. */
export type StopCause = 'cancel' | 'taken' | 'worker';

/** Every cause but an eviction, which carries its reason. */
export type StopFlag = StopCause | 'fenced' | 'timeout';

/**
 * Why a run is being stopped, and within what grace: several causes may
 * come, each counts once, and the shortest grace asked for wins. What the
 * end report records of them is `recorded()`; `taken` is not recorded (a
 * taken run records nothing at all).
 */
export class StopRequests {
  private readonly flags: Record<StopFlag, boolean> = { cancel: false, taken: false, worker: false, fenced: false, timeout: false };
  private evictedFor: string | undefined;
  private shortestGraceMs: number | undefined;

  /** Records a cause; false when it was recorded already (the grace stays as it was). */
  add(cause: StopFlag, graceMs: number): boolean {
    if (this.flags[cause]) return false;
    this.flags[cause] = true;
    this.shortenGrace(graceMs);
    return true;
  }

  /** Records an eviction; false when one was recorded already. */
  evict(reason: string, graceMs: number): boolean {
    if (this.evictedFor !== undefined) return false;
    this.evictedFor = reason;
    this.shortenGrace(graceMs);
    return true;
  }

  /** A cancel or an eviction flagged on the assignment itself (one that came while no run followed the job). */
  addFlagsOf(assignment: Assignment): void {
    if (assignment.cancel) this.add('cancel', assignment.cancel.graceMs);
    if (assignment.evict) this.evict(assignment.evict.reason, assignment.evict.graceMs);
  }

  has(cause: StopFlag): boolean {
    return this.flags[cause];
  }

  get evicted(): string | undefined {
    return this.evictedFor;
  }

  /** Some cause asks the run to stop (or not to start). */
  get any(): boolean {
    return Object.values(this.flags).some(Boolean) || this.evictedFor !== undefined;
  }

  /** The grace of the stop: the shortest asked for, else `fallback`. */
  graceMs(fallback: number): number {
    return this.shortestGraceMs ?? fallback;
  }

  /** The causes the end report records. */
  recorded(): StopCauses {
    const { cancel, timeout, fenced, worker } = this.flags;
    return { cancel, timeout, fenced, worker, ...(this.evictedFor !== undefined ? { evicted: this.evictedFor } : {}) };
  }

  private shortenGrace(graceMs: number): void {
    this.shortestGraceMs = Math.min(graceMs, this.shortestGraceMs ?? graceMs);
  }
}
