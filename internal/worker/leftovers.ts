import type { Logger } from '../../pkg/log/logger.js';
import type { DockerExecutor } from './docker-executor.js';
import { killJournaledGroup } from './process-group.js';
import type { RunJournal } from './run-journal.js';

/** Whether this node still holds an assignment for exactly this attempt. */
export type OwnedAttempt = (jobId: string, attempt: number) => boolean;

/**
 * Run once when a worker process starts, after it learned its assignments:
 * whatever an earlier process of this node left for attempts that are no
 * longer this node's (ended, requeued, or moved while no worker watched) is
 * removed — containers labelled for the node, and the process groups of
 * journaled shell runs. Runs of assignments still held are left to their
 * JobRun, which re-attaches them.
 */
export async function sweepLeftovers(
  deps: { journal: RunJournal; docker: DockerExecutor | undefined; logger: Logger },
  owned: OwnedAttempt,
): Promise<void> {
  const { journal, docker, logger } = deps;
  for (const record of journal.list()) {
    if (owned(record.jobId, record.attempt)) continue;
    if (record.pid !== undefined) {
      const killed = killJournaledGroup(record.pid, record.procStart);
      logger.info({ job: record.jobId, attempt: record.attempt, pid: record.pid, killed }, 'no assignment claims this shell run; killed its process group');
    }
    await journal.remove(record.jobId, record.attempt);
  }
  if (!docker) return;
  try {
    const removed = await docker.removeForeign(owned);
    if (removed > 0) logger.info({ removed }, 'removed containers no assignment claims');
  } catch (err) {
    logger.warn({ err }, 'could not look for leftover containers');
  }
}
