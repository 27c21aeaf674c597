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
 * its history record, as its node reported it; an attempt ended by someone
 * else (the master requeued it when its node was lost) has none, and its
 * last stored chunk says how far its log got, when this node ran it (a node
 * reads no other node's output).
 */
export async function earlierLogBytes(store: Store, job: Job, nodeId: string): Promise<number> {
  let used = 0;
  for (const record of job.history ?? []) {
    if (record.attempt >= job.attempt) continue;
    if (record.logBytes !== undefined) used += record.logBytes;
    else if (record.node === nodeId) used += offsetBytes((await store.lastLogChunk(nodeId, job.id, record.attempt))?.offsets);
  }
  return used;
}

/**
 * The attempt's share of the job's log budget: what the earlier attempts left
 * of `budgetBytes`, and never more than the per-attempt cap. One job retried
 * a hundred times stores at most the budget (plus a one-line marker for each
 * attempt that found nothing left), not a hundred caps.
 */
export async function attemptLogLimit(store: Store, job: Job, nodeId: string, maxLogBytes: number, budgetBytes: number): Promise<LogLimit> {
  const left = Math.max(0, budgetBytes - (await earlierLogBytes(store, job, nodeId)));
  if (left >= maxLogBytes) return { maxBytes: maxLogBytes, truncatedNote: attemptCapNote(maxLogBytes) };
  // The marker comes out of what is left too; an attempt with nothing left still stores it, once.
  const truncatedNote = jobBudgetNote(budgetBytes);
  return { maxBytes: Math.max(0, left - Buffer.byteLength(truncatedNote)), truncatedNote };
}
