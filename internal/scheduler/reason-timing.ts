import type { PassJob } from './pass.js';
import { pendingReasonKind } from './reasons.js';

/**
 * When a pass writes a pending job's reason: at once when it says something
 * new, its figures at most every REASON_REFRESH_MS, and a wait for capacity
 * only after REASON_GRACE_MS. Each reason is a write of the whole job.
 */

/**
 * A reason whose figures alone changed (a queue position, the most free on
 * a node) is rewritten at most this often. On a full cluster every ended job
 * moves every position in the queue, and each reason is a write of the whole
 * job: without this, one freed slot rewrote the head of the queue.
 */
export const REASON_REFRESH_MS = 10_000;

/**
 * A job that waits for capacity gets its first reason only once it has
 * waited this long: in a busy queue of short jobs most are placed sooner,
 * and each reason is a write of the whole job. Counted from `createdAt`,
 * only while that lies in the past (a submitter's clock ahead of the
 * master's never holds a reason back longer).
 */
export const REASON_GRACE_MS = 1_000;

/** When a job without a reason yet may get a capacity reason: at once, or when REASON_GRACE_MS has passed since it was created. */
export function capacityReasonDueAt(job: PassJob, now: number): number {
  const age = now - job.createdAt;
  return job.reason === undefined && age >= 0 && age < REASON_GRACE_MS ? job.createdAt + REASON_GRACE_MS : -Infinity;
}

/** What a reason says, without its figures ("100+", a capped queue position, is a figure too). */
export const reasonGist = (reason: string): string => reason.replace(/\d+(\.\d+)?\+?/g, '#');

/**
 * When a new reason, known by its gist, may replace the job's: at once if it
 * says something else, else REASON_REFRESH_MS after the last write. `gist` is
 * reasonGist, memoized for the pass: a full queue offers the same few
 * reasons to hundreds of jobs.
 */
export function reasonDueAt(job: PassJob, newGist: string, gist: (reason: string) => string): number {
  if (job.reason === undefined || job.reasonAt === undefined || gist(job.reason) !== newGist) return -Infinity;
  return job.reasonAt + REASON_REFRESH_MS;
}

/** The reason of a shape that fits nowhere in this pass, and its gist once a queue place is added, per queue. */
export class ShapeReason {
  readonly waitsForCapacity: boolean;
  private readonly gists = new Map<string, string>();

  constructor(
    readonly text: string,
    private readonly gist: (reason: string) => string,
  ) {
    this.waitsForCapacity = pendingReasonKind(text) === 'capacity';
  }

  /** The gist of `text; #N in queue <queue>`, whatever N. */
  gistInQueue(queue: string): string {
    let gist = this.gists.get(queue);
    if (gist === undefined) {
      gist = this.gist(`${this.text}; #1 in queue ${queue}`);
      this.gists.set(queue, gist);
    }
    return gist;
  }
}

/** reasonGist with a memo of at most `limit` reasons. */
export function memoizedGist(limit = 1024): (reason: string) => string {
  const memo = new Map<string, string>();
  return (reason) => {
    let gist = memo.get(reason);
    if (gist === undefined) {
      gist = reasonGist(reason);
      if (memo.size < limit) memo.set(reason, gist);
    }
    return gist;
  };
}

