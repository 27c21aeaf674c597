import { retryCall, type CallRetryOptions } from '../../pkg/concurrency/call-retry.js';
import type { Logger } from '../../pkg/log/logger.js';
import { NO_CAUSES, type Assignment, type RunEnd, type RunReport, type StopCauses } from '../../pkg/model/index.js';
import type { Versioned } from '../../pkg/store/index.js';
import type { ReportBatcher } from './report-batcher.js';

type WriteRetry = Pick<CallRetryOptions, 'initialDelayMs' | 'maxDelayMs' | 'budgetMs'>;

/** Tries of the end report (call-retry.ts): about a minute in all, then a later run of the assignment takes over. */
const END_REPORT_RETRY: WriteRetry = { initialDelayMs: 250, maxDelayMs: 2000, budgetMs: 60_000 };
/** A worker that is shutting down should not hang on an unreachable etcd: some 2 s of tries. */
const SHUTDOWN_REPORT_RETRY: WriteRetry = { initialDelayMs: 250, maxDelayMs: 1000, budgetMs: 2000 };

/** How writing the end report went: written, refused (the assignment is no longer this node's), or not written. */
export type ReportOutcome = 'reported' | 'fenced' | 'unwritten';

export interface EndReportWriter {
  reports: ReportBatcher;
  /** Fences the write: a run that was taken away never speaks for a newer attempt. */
  assignment: Versioned<Assignment>;
  logger: Logger;
  /** The worker is stopping with its jobs: some 2 s of tries, not a minute's. */
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
  const { reports, assignment, logger } = writer;
  try {
    // Every failure is tried again: the write is the same each time, and the journal keeps the end if it never goes through.
    const written = await retryCall(async () => (await reports.write({ assignment, report, fence: 'end' })).outcome === 'written', {
      ...(writer.shuttingDown ? SHUTDOWN_REPORT_RETRY : END_REPORT_RETRY),
      retryable: () => !writer.letGo(),
      onRetry: (err, failures) => {
        if (failures === 1) logger.warn({ err }, 'reporting the end of the attempt failed; retrying');
      },
    });
    return written ? 'reported' : 'fenced';
  } catch (err) {
    logger.error({ err }, 'could not report the end of the attempt; a later run of the assignment will');
    return 'unwritten';
  }
}

/** The end part of a report: how the run ended, why it was stopped, how much log it stored. */
export function endOf(result: RunEnd, causes: StopCauses = NO_CAUSES, logBytes?: number): NonNullable<RunReport['end']> {
  return { result, causes, finishedAt: Date.now(), ...(logBytes !== undefined ? { logBytes } : {}) };
}
