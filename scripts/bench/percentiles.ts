/**
 * Pure statistics for the benchmark: percentiles by nearest rank (a reported
 * P99 is always a latency that really happened), summaries and rates.
 */

export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * The nearest-rank percentile of values sorted ascending: the smallest value
 * with at least p% of the values at or below it. NaN for no values.
 */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is not between 0 and 100`);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

/** Sorts a copy (numerically) and takes the nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  return percentileOfSorted(sortNumbers(values), p);
}

export function sortNumbers(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** count, min, mean, p50, p90, p99, max; undefined for no values. */
export function summarize(values: readonly number[]): LatencySummary | undefined {
  if (values.length === 0) return undefined;
  const sorted = sortNumbers(values);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    min: sorted[0],
    mean: sum / sorted.length,
    p50: percentileOfSorted(sorted, 50),
    p90: percentileOfSorted(sorted, 90),
    p99: percentileOfSorted(sorted, 99),
    max: sorted[sorted.length - 1],
  };
}

/**
 * Events per second: `count` events over a window of `spanMs` (for a burst,
 * from the first event to the last). A window of zero (one event, or all
 * seen at the same instant) has no meaningful rate: undefined.
 */
export function ratePerSecond(count: number, spanMs: number): number | undefined {
  if (!(spanMs > 0) || count <= 0) return undefined;
  return (count * 1000) / spanMs;
}

/** Rounds for reporting: 3 significant digits below 100, whole numbers above. */
export function roundFigure(value: number | undefined): number | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  if (Math.abs(value) >= 100) return Math.round(value);
  return Number(value.toPrecision(3));
}
