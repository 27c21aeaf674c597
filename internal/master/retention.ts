import type { ICompare } from 'etcd3';
import type { Logger } from 'pino';
import { isFinal } from '../../pkg/model/index.js';
import { flatString, nodesOfJob, records, type JobRef, type Store } from '../../pkg/store/index.js';
import { PeriodicTask } from './periodic.js';

export interface RetentionPolicy {
  /** Ended jobs older than this (by finish time) are removed. */
  retainMs: number;
  /** At most this many ended jobs are kept; the oldest go first. */
  retainJobs: number;
}

export interface EndedJob extends JobRef {
  finishedAt: number;
}

/** Which ended jobs to remove: those past the age limit, then the oldest beyond the count. Pure. */
export function selectExpired(ended: readonly EndedJob[], policy: RetentionPolicy, now: number): EndedJob[] {
  const oldestFirst = [...ended].sort((a, b) => a.finishedAt - b.finishedAt || (a.id < b.id ? -1 : 1));
  const overCount = Math.max(0, oldestFirst.length - policy.retainJobs);
  return oldestFirst.filter((job, i) => i < overCount || job.finishedAt < now - policy.retainMs);
}

/** While etcd is near its quota, ended jobs are swept this often… */
export const PRESSURE_SWEEP_MS = 5_000;
/** …and kept for this share of --retain and --retain-jobs. */
export const PRESSURE_SHARE = 0.25;

/** The policy while storage is under pressure: ended jobs go sooner; pending and running jobs are never touched. */
export function pressurePolicy(policy: RetentionPolicy): RetentionPolicy {
  return { retainMs: policy.retainMs * PRESSURE_SHARE, retainJobs: Math.floor(policy.retainJobs * PRESSURE_SHARE) };
}

/**
 * Keeps etcd small: the leader periodically removes ended jobs (and their
 * logs) past the retention policy, in batched transactions guarded by its
 * term. The Compactor then drops the history of what was removed. Under
 * storage pressure (StorageWatch) it sweeps every PRESSURE_SWEEP_MS with
 * pressurePolicy, so running jobs keep room to report.
 */
export class Retention {
  private readonly task: PeriodicTask;
  private readonly pressureTask: PeriodicTask;
  private pressure = false;

  constructor(
    private readonly store: Store,
    private readonly policy: RetentionPolicy,
    intervalMs: number,
    private readonly isLeader: () => boolean,
    private readonly guard: () => ICompare[],
    private readonly logger: Logger,
    /** Ended jobs kept whatever the policy says: pending jobs wait for them (their outcome is still to be read). */
    private readonly held: (jobId: string) => boolean = () => false,
  ) {
    const run = async (): Promise<void> => {
      if (!this.isLeader()) return;
      await this.sweep().catch((err: unknown) => this.logger.warn({ err }, 'retention sweep failed'));
    };
    this.task = new PeriodicTask(intervalMs, run);
    this.pressureTask = new PeriodicTask(PRESSURE_SWEEP_MS, () => (this.pressure ? run() : Promise.resolve()));
  }

  start(): void {
    this.task.start();
    this.pressureTask.start();
  }

  async stop(): Promise<void> {
    await this.task.stop();
    await this.pressureTask.stop();
  }

  get underPressure(): boolean {
    return this.pressure;
  }

  /** Storage pressure on or off (StorageWatch). */
  setPressure(on: boolean): void {
    if (on !== this.pressure) this.logger.warn({ pressure: on }, on ? 'storage pressure: sweeping ended jobs sooner' : 'storage pressure over');
    this.pressure = on;
  }

  async sweep(now = Date.now()): Promise<{ removed: number }> {
    const ended: EndedJob[] = [];
    await this.store.scan(this.store.keys.collection('jobs'), records.job, (page) => {
      for (const j of page) {
        if (!isFinal(j.value.state) || this.held(j.value.id)) continue;
        const nodes = nodesOfJob(j.value).map(flatString);
        ended.push({ id: flatString(j.value.id), modRevision: j.modRevision, finishedAt: j.value.finishedAt ?? j.value.createdAt, nodes });
      }
    });
    const expired = selectExpired(ended, this.pressure ? pressurePolicy(this.policy) : this.policy, now);
    const removed = expired.length > 0 ? await this.store.removeJobs(expired, this.guard()) : 0;
    if (removed > 0) this.logger.info({ removed, ended: ended.length }, 'retention sweep');
    return { removed };
  }
}
