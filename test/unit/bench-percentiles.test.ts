import { describe, expect, it } from 'vitest';
import { percentile, percentileOfSorted, ratePerSecond, roundFigure, sortNumbers, summarize } from '../../scripts/bench/percentiles.js';

describe('bench percentiles', () => {
  it('takes the nearest rank: a value that really occurred', () => {
    const values = [15, 20, 35, 40, 50];
    expect(percentile(values, 0)).toBe(15);
    expect(percentile(values, 5)).toBe(15);
    expect(percentile(values, 30)).toBe(20);
    expect(percentile(values, 40)).toBe(20);
    expect(percentile(values, 50)).toBe(35);
    expect(percentile(values, 100)).toBe(50);
  });

  it('puts P99 of 100 values at the 99th and P50 of an even count at the lower middle', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // unsorted on purpose
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile([1, 2], 50)).toBe(1);
  });

  it('sorts numerically, not as strings, and leaves the input alone', () => {
    const values = [10, 9, 100, 1];
    expect(sortNumbers(values)).toEqual([1, 9, 10, 100]);
    expect(values).toEqual([10, 9, 100, 1]);
    expect(percentile(values, 100)).toBe(100);
  });

  it('is NaN without values and rejects a percentile outside 0..100', () => {
    expect(percentileOfSorted([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });

  it('summarizes latencies', () => {
    const values = Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(summarize(values)).toEqual({ count: 1000, min: 1, mean: 500.5, p50: 500, p90: 900, p99: 990, max: 1000 });
    expect(summarize([])).toBeUndefined();
    expect(summarize([7])).toEqual({ count: 1, min: 7, mean: 7, p50: 7, p90: 7, p99: 7, max: 7 });
  });

  it('computes rates and refuses an empty window', () => {
    expect(ratePerSecond(20_000, 2000)).toBe(10_000);
    expect(ratePerSecond(1, 0)).toBeUndefined();
    expect(ratePerSecond(0, 100)).toBeUndefined();
    expect(ratePerSecond(5, Number.NaN)).toBeUndefined();
  });

  it('rounds figures for reports', () => {
    expect(roundFigure(12345.678)).toBe(12346);
    expect(roundFigure(3.14159)).toBe(3.14);
    expect(roundFigure(0.30912)).toBe(0.309);
    expect(roundFigure(undefined)).toBeUndefined();
    expect(roundFigure(Number.POSITIVE_INFINITY)).toBeUndefined();
  });
});
