import type { BenchResult } from './report.js';

/**
 * Pure parts of the API measurements (--api): the log lines the simulated
 * worker writes and the follower reads back, the check that a followed log
 * lost and repeated nothing, and the with/without ratios.
 */

const LOG_LINE = /titan-bench-log (\d+) (\d+\.\d+)/g;

/** A line of the followed job's output: its sequence number and when it was flushed (wall clock, ms with fraction). */
export function benchLogLine(seq: number, flushedAtMs: number): string {
  return `titan-bench-log ${seq} ${flushedAtMs.toFixed(3)}\n`;
}

/** Every bench log line in a text (an SSE event's data, however it frames the output: plain or JSON-escaped). */
export function parseBenchLogLines(text: string): { seq: number; flushedAtMs: number }[] {
  return [...text.matchAll(LOG_LINE)].map((m) => ({ seq: Number(m[1]), flushedAtMs: Number(m[2]) }));
}

export interface SequenceCheck {
  /** Lines received, and distinct ones. */
  received: number;
  distinct: number;
  /** Sequence numbers between the first and the last received that never came. */
  missing: number;
  /** Lines received more than once. */
  repeated: number;
}

/** How a stream of sequence numbers (starting anywhere) compares with an unbroken run. */
export function checkSequence(seqs: readonly number[]): SequenceCheck {
  const distinct = new Set(seqs);
  if (distinct.size === 0) return { received: 0, distinct: 0, missing: 0, repeated: 0 };
  let min = Infinity;
  let max = -Infinity;
  for (const s of distinct) {
    if (s < min) min = s;
    if (s > max) max = s;
  }
  return { received: seqs.length, distinct: distinct.size, missing: max - min + 1 - distinct.size, repeated: seqs.length - distinct.size };
}

/** with ÷ without; null when either is missing or the base is not positive. */
export function loadRatio(withLoad: number | null | undefined, without: number | null | undefined): number | null {
  if (withLoad === null || withLoad === undefined || without === null || without === undefined) return null;
  if (!(without > 0) || !Number.isFinite(withLoad)) return null;
  return withLoad / without;
}

/** Fills the --api ratios from the loaded figures and the headline (unloaded) ones of the same run. */
export function completeApiRatios(result: BenchResult): void {
  const api = result.api;
  if (!api) return;
  api.placementRatio = loadRatio(api.placementsPerSecLoaded, result.placementsPerSec);
  api.dispatchP50Ratio = loadRatio(api.dispatchP50MsLoaded, result.dispatchP50Ms);
  api.dispatchP99Ratio = loadRatio(api.dispatchP99MsLoaded, result.dispatchP99Ms);
}
