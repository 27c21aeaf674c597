import { seededRandom } from './protocol.js';

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The q-quantile (0-1) of sorted values, interpolating between neighbours (numpy's default). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

export interface BootstrapOptions {
  /** Resamples drawn (default 2000). */
  resamples?: number;
  /** Coverage of the interval (default 0.95). */
  confidence?: number;
  /** Seed of the resampling, so the same values give the same interval (default 1). */
  seed?: number;
}

/**
 * A percentile-bootstrap interval for the median of `values` (per-seed
 * figures): the median of each resample of the values with replacement, and
 * the central `confidence` share of those medians. Seeded: deterministic.
 */
export function bootstrapMedianInterval(values: readonly number[], options: BootstrapOptions = {}): [number, number] {
  const resamples = options.resamples ?? 2000;
  const confidence = options.confidence ?? 0.95;
  if (values.length === 0) return [NaN, NaN];
  const random = seededRandom(options.seed ?? 1);
  const medians: number[] = [];
  const sample = new Array<number>(values.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < values.length; i++) sample[i] = values[Math.floor(random() * values.length)];
    medians.push(median(sample));
  }
  medians.sort((a, b) => a - b);
  const tail = (1 - confidence) / 2;
  return [quantile(medians, tail), quantile(medians, 1 - tail)];
}
