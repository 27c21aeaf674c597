import type { Logger } from '../../pkg/log/logger.js';
import { NO_CAUSES, type Assignment, type RunEnd, type RunReport, type StopCauses } from '../../pkg/model/index.js';
import type { Store, Versioned } from '../../pkg/store/index.js';
import { sleep } from './executor.js';

/** Waits between tries of a final-state write: about a minute in all, then a later run of the assignment takes over. */
export const FINAL_WRITE_DELAYS_MS = [250, 500, 1000, ...Array.from({ length: 29 }, () => 2000)];
/** A worker that is shutting down should not hang on an unreachable etcd. */
const SHUTDOWN_WRITE_DELAYS_MS = [250, 500, 1000];

/** How writing the end report went: written, refused (the assignment is no longer this node's), or not written. */
export type ReportOutcome = 'reported' | 'fenced' | 'unwritten';

export interface EndReportWriter {
  store: Store;
  /** Fences the write: a run that was taken away never speaks for a newer attempt. */
  assignment: Versioned<Assignment>;
  logger: Logger;
  /** The worker is stopping with its jobs: a few tries, not a minute's. */
  shuttingDown: boolean;
  /** The worker let the run go: one try only. */
  letGo: () => boolean;
}

/**
 * Reports the attempt's end, retrying a while: a report lost to a short
 * etcd outage would leave the job Running. 'unwritten' means a later run of
 * the assignment reports it from the journal.
 */
export async function writeEndReport(report: RunReport, writer: EndReportWriter): Promise<ReportOutcome> {
  const { store, assignment, logger } = writer;
  const delays = writer.shuttingDown ? SHUTDOWN_WRITE_DELAYS_MS : FINAL_WRITE_DELAYS_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return (await store.putReport(assignment, report)) ? 'reported' : 'fenced';
    } catch (err) {
      if (attempt >= delays.length || writer.letGo()) {
        logger.error({ err }, 'could not report the end of the attempt; a later run of the assignment will');
        return 'unwritten';
      }
      if (attempt === 0) logger.warn({ err }, 'reporting the end of the attempt failed; retrying');
      await sleep(delays[attempt]);
    }
  }
}

/** The end part of a report: how the run ended, why it was stopped, how much log it stored. */
export function endOf(result: RunEnd, causes: StopCauses = NO_CAUSES, logBytes?: number): NonNullable<RunReport['end']> {
  return { result, causes, finishedAt: Date.now(), ...(logBytes !== undefined ? { logBytes } : {}) };
}
