import type { Job } from '../../pkg/model/index.js';
import type { Store } from '../../pkg/store/index.js';
import { attemptCapNote, jobBudgetNote, offsetBytes } from './log-sink.js';

/** What one attempt may store, and the marker it stores when that runs out. */
export interface LogLimit {
  maxBytes: number;
  truncatedNote: string;
}

/**
 * Output the job's earlier attempts stored: each attempt's `logBytes` from
 * its history record, written by the worker that ended it; an attempt ended
 * by someone else (the master requeued it when its node was lost) has none,
 * and its last stored chunk says how far its log got.
 */
export async function earlierLogBytes(store: Store, job: Job): Promise<number> {
  const recorded = new Map<number, number>();
  for (const record of job.history ?? []) {
    const { logBytes } = record;
    if (typeof logBytes === 'number' && Number.isSafeInteger(logBytes) && logBytes >= 0) recorded.set(record.attempt, logBytes);
  }
  let used = 0;
  for (let attempt = 1; attempt < job.attempt; attempt++) {
    used += recorded.get(attempt) ?? offsetBytes((await store.lastLogChunk(job.id, attempt))?.offsets);
  }
  return used;
}

/**
 * The attempt's share of the job's log budget: what the earlier attempts left
 * of `budgetBytes`, and never more than the per-attempt cap. One job retried
 * a hundred times stores at most the budget (plus a one-line marker for each
 * attempt that found nothing left), not a hundred caps.
 */
export async function attemptLogLimit(store: Store, job: Job, maxLogBytes: number, budgetBytes: number): Promise<LogLimit> {
  const left = Math.max(0, budgetBytes - (await earlierLogBytes(store, job)));
  if (left >= maxLogBytes) return { maxBytes: maxLogBytes, truncatedNote: attemptCapNote(maxLogBytes) };
  // The marker comes out of what is left too; an attempt with nothing left still stores it, once.
  const truncatedNote = jobBudgetNote(budgetBytes);
  return { maxBytes: Math.max(0, left - Buffer.byteLength(truncatedNote)), truncatedNote };
}
