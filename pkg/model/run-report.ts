import { jobAfterAttempt, type RunEnd, type StopCauses } from './attempt-end.js';
import { isFinal, type Job } from './job.js';
import type { RetryPolicy } from './retry.js';
import { transition } from './transitions.js';

/**
 * What a node says about one attempt it holds, under its own key prefix
 * (`reports/<node>/<job>`): nodes never write job records. The master reads
 * it, decides what it means for the job (foldReport) and writes the job.
 */
export interface RunReport {
  jobId: string;
  attempt: number;
  /** `Running`: the run started. `Ended`: it is over (or never started), and how. */
  state: 'Running' | 'Ended';
  /** When the run started (absent: it never did). */
  startedAt?: number;
  end?: RunEndReport;
}

export interface RunEndReport {
  result: RunEnd;
  causes: StopCauses;
  finishedAt: number;
  /** Bytes of output this attempt stored (the job's log budget counts them). */
  logBytes?: number;
}

/** A node's words go into a record users read: bounded. */
const MAX_REPORTED_TEXT = 1024;

function bounded(text: string): string {
  return text.length <= MAX_REPORTED_TEXT ? text : `${text.slice(0, MAX_REPORTED_TEXT)}…`;
}

function boundedEnd(result: RunEnd): RunEnd {
  if (result.type === 'exited') return result.detail === undefined ? result : { ...result, detail: bounded(result.detail) };
  if (result.type === 'not-started') return result;
  return { ...result, reason: bounded(result.reason) };
}

/**
 * The job after a node's report on its attempt, or undefined when the report
 * changes nothing (another attempt's, a start already recorded, a job that
 * already ended). The only fields a report sets are the run's: state, start
 * and end times, exit code, reason, the attempt's history record; the spec
 * is never touched. Times come from the node's clock.
 */
export function foldReport(job: Job, report: RunReport, nodeId: string, policy: RetryPolicy): Job | undefined {
  if (report.attempt !== job.attempt || isFinal(job.state) || job.state === 'Pending') return undefined;
  let current = job;
  if (job.state === 'Scheduled' && report.startedAt !== undefined) {
    const { reason: _reason, ...rest } = job;
    current = transition(rest, 'Running', { startedAt: report.startedAt, node: nodeId });
  }
  if (report.state === 'Running' || !report.end) return current === job ? undefined : current;
  const { result, causes, finishedAt, logBytes } = report.end;
  return jobAfterAttempt(current, causes, boundedEnd(result), policy, finishedAt, logBytes);
}
