import type { Logger } from 'pino';
import type { ICompare } from 'etcd3';
import type { Placement, Store } from '../../pkg/store/index.js';
import type { ClusterState } from './cluster-state.js';
import type { ReasonUpdate } from './plan.js';

export interface CommitStats {
  committed: number;
  conflicts: number;
}

/** Runs tasks with at most `limit` in flight. */
async function inParallel<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await run(items[next++]);
  });
  await Promise.all(lanes);
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Writes a plan to etcd: placements in batches of one transaction each, a
 * bounded number in flight. A batch fails whole if any job or node in it
 * changed; its placements are then retried one by one so only the stale ones
 * are dropped (and their tentative allocations undone). Nothing is ever
 * placed twice: every placement compares the job's revision.
 */
export class Committer {
  constructor(
    private readonly store: Store,
    private readonly state: ClusterState,
    private readonly logger: Logger,
    private readonly batchSize: number,
    private readonly concurrency: number,
    private readonly guard: () => ICompare[] = () => [],
  ) {}

  async commitPlacements(placements: readonly Placement[]): Promise<CommitStats> {
    const stats: CommitStats = { committed: 0, conflicts: 0 };
    await inParallel(chunk(placements, this.batchSize), this.concurrency, async (batch) => {
      if (await this.tryCommit(batch)) {
        stats.committed += batch.length;
        return;
      }
      if (batch.length === 1) {
        stats.conflicts++;
        return;
      }
      for (const p of batch) {
        if (await this.tryCommit([p])) stats.committed++;
        else stats.conflicts++;
      }
    });
    return stats;
  }

  private async tryCommit(batch: readonly Placement[]): Promise<boolean> {
    let result;
    try {
      result = await this.store.commitPlacements(batch, this.guard());
    } catch (err) {
      this.logger.warn({ err, placements: batch.length }, 'placement commit failed; will retry');
      if (batch.length === 1) this.state.dropAllocation(batch[0].job.value.id);
      return false;
    }
    if (result.succeeded) {
      for (const p of batch) {
        this.state.noteLocalJobWrite(p.job, p.scheduled, result.revision);
        this.logger.debug({ job: p.job.value.id, node: p.assignment.nodeId, attempt: p.assignment.attempt }, 'placed');
      }
      return true;
    }
    if (batch.length === 1) this.state.dropAllocation(batch[0].job.value.id);
    return false;
  }

  /** Pending reasons are advisory: a write that loses a race is simply dropped. */
  async commitReasons(updates: readonly ReasonUpdate[]): Promise<void> {
    await inParallel(chunk(updates, this.batchSize), this.concurrency, async (batch) => {
      try {
        const result = await this.store.updateJobsIfUnchanged(batch);
        if (result.succeeded) {
          for (const u of batch) this.state.noteLocalJobWrite(u.job, u.next, result.revision);
        }
      } catch (err) {
        this.logger.debug({ err }, 'reason update failed');
      }
    });
  }
}
