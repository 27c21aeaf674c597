import type { Logger } from 'pino';
import { isCompactedError, type DeliveredRevision, type Store } from '../../pkg/store/index.js';
import { PeriodicTask } from './periodic.js';

/** A revision etcd was at, and when (performance.now()). */
export interface RevisionMark {
  revision: bigint;
  at: number;
}

/**
 * The revision to compact etcd to now, or undefined: the newest revision
 * seen at least `historyMs` ago, so every revision younger than that stays
 * readable and a watcher less than `historyMs` behind resumes without a
 * re-list. Never past `watchedUpTo` (what the master's own watches have
 * delivered), never backwards. Pure.
 */
export function compactionTarget(
  marks: readonly RevisionMark[],
  compactedTo: bigint,
  now: number,
  historyMs: number,
  watchedUpTo?: bigint,
): bigint | undefined {
  let target: bigint | undefined;
  for (const m of marks) if (m.at <= now - historyMs && (target === undefined || m.revision > target)) target = m.revision;
  if (target !== undefined && watchedUpTo !== undefined && watchedUpTo < target) target = watchedUpTo;
  return target !== undefined && target > compactedTo ? target : undefined;
}

/**
 * The lowest revision delivered by the informers that delivered anything in
 * the last `historyMs`: a watch that is behind keeps delivering its backlog,
 * so it shows up here; one that delivered nothing for that long is idle and
 * caught up (its prefix is quiet), and holds nothing back.
 */
export function lowestActiveDelivery(deliveries: readonly (DeliveredRevision | undefined)[], now: number, historyMs: number): bigint | undefined {
  let lowest: bigint | undefined;
  for (const d of deliveries) {
    if (!d || d.at < now - historyMs) continue;
    if (lowest === undefined || d.revision < lowest) lowest = d.revision;
  }
  return lowest;
}

export function minRevision(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  return a === undefined ? b : b === undefined || a < b ? a : b;
}

/**
 * Keeps etcd's history short. etcd 3.4 keeps every version of every key
 * until it is compacted, and each request costs it more CPU once a few
 * thousand versions have piled up since the last compaction: a fenced
 * one-key transaction took ~0.14 ms of etcd CPU right after a compaction and
 * ~0.26-0.33 ms with 6,000 or more versions behind it (docs/benchmarks.md).
 * A scheduler writes about six versions per job (its states, its assignment
 * put and deleted), so the leader marks etcd's revision every tick and
 * compacts to the newest mark at least `historyMs` old, at most once per
 * window: etcd keeps between one and two windows of history. Watchers
 * further behind re-list (pkg/store/informer.ts), and so do paged reads a
 * compaction overtakes (Store.list), except this master's own.
 */
export class Compactor {
  private readonly task: PeriodicTask;
  private marks: RevisionMark[] = [];
  private compactedTo = 0n;
  private compactedAt = -Infinity;
  private failing = false;

  constructor(
    private readonly store: Store,
    private readonly historyMs: number,
    private readonly isLeader: () => boolean,
    private readonly watchedUpTo: (now: number) => bigint | undefined,
    private readonly logger: Logger,
  ) {
    // Ticks a few times per window, at most once a second.
    this.task = new PeriodicTask(Math.max(50, Math.min(1000, historyMs / 4)), () =>
      this.tick().then(
        () => {
          if (this.failing) this.logger.info('compaction works again');
          this.failing = false;
        },
        (err: unknown) => {
          // Once per outage: etcd being away is logged by everything that talks to it.
          if (!this.failing) this.logger.warn({ err }, 'compaction failed; retrying every tick');
          this.failing = true;
        },
      ),
    );
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** Marks the current revision and compacts if a mark is old enough; returns the revision compacted to. */
  async tick(now = performance.now()): Promise<bigint | undefined> {
    if (!this.isLeader()) {
      this.marks = []; // a new term starts its window afresh
      return undefined;
    }
    const revision = BigInt(await this.store.currentRevision());
    if (this.marks.at(-1)?.revision !== revision) this.marks.push({ revision, at: now });
    // Of the marks older than the window only the newest can be a target.
    const old = this.marks.filter((m) => m.at <= now - this.historyMs);
    if (old.length > 1) this.marks = this.marks.slice(old.length - 1);
    // At most one compaction per window: each one walks etcd's whole key index.
    if (now - this.compactedAt < this.historyMs) return undefined;
    const target = compactionTarget(this.marks, this.compactedTo, now, this.historyMs, this.watchedUpTo(now));
    if (target === undefined) return undefined;
    try {
      await this.store.compact(String(target));
      this.logger.debug({ revision: String(target) }, 'compacted etcd history');
    } catch (err) {
      // Compacted further already (another master, an operator, etcd's auto-compaction): nothing to do.
      if (!isCompactedError(err)) throw err;
    }
    this.compactedTo = target;
    this.compactedAt = now;
    this.marks = this.marks.filter((m) => m.revision > target);
    return target;
  }
}
