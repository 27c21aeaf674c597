import { describe, expect, it } from 'vitest';
import { runComparison } from '../../internal/simulate/compare.js';
import { bootstrapMedianInterval, median, quantile } from '../../internal/simulate/seed-stats.js';
import { parseTraceJobs, parseTraceNodes } from '../../internal/simulate/trace.js';

describe('per-seed statistics', () => {
  it('takes medians and interpolated quantiles', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
    expect(quantile([0, 10, 20, 30], 0.5)).toBe(15);
    expect(quantile([0, 10, 20, 30], 0.025)).toBeCloseTo(0.75, 12);
    expect(quantile([0, 10, 20, 30], 1)).toBe(30);
  });

  it('bootstraps a deterministic percentile interval for the median', () => {
    const diffs = [0.1, 0.3, -0.2, 0.25, 0.15, 0.4, 0.05, 0.2, 0.35, 0.1];
    const interval = bootstrapMedianInterval(diffs);
    expect(bootstrapMedianInterval(diffs)).toEqual(interval);
    expect(interval[0]).toBeLessThanOrEqual(median(diffs));
    expect(interval[1]).toBeGreaterThanOrEqual(median(diffs));
    expect(interval[0]).toBeGreaterThanOrEqual(Math.min(...diffs));
    expect(interval[1]).toBeLessThanOrEqual(Math.max(...diffs));
    expect(interval).toEqual([0.1, 0.3]);
    // Narrower coverage, narrower interval.
    const narrow = bootstrapMedianInterval(diffs, { confidence: 0.5 });
    expect(narrow[1] - narrow[0]).toBeLessThan(interval[1] - interval[0]);
    expect(bootstrapMedianInterval([0.3, 0.3, 0.3])).toEqual([0.3, 0.3]);
  });
});

describe('same-run comparison', () => {
  const nodes = parseTraceNodes(['sn,cpu_milli,memory_mib,gpu,model', 'small,1000,4096,1,T4', 'big,8000,16384,2,T4'].join('\n'));
  const jobs = parseTraceJobs(['name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec', ...Array.from({ length: 6 }, (_, i) => `t${i},1000,1024,1,500,`)].join('\n'));

  it('runs both policies on each seed and reports the policy minus the reference', () => {
    const report = runComparison({ nodes, jobs, policy: 'fgd', reference: 'bestfit', seed: 42, seeds: 3, tune: 1.3 });
    expect(report).toMatchObject({ policy: 'fgd', reference: 'bestfit', nodes: 2, gpus: 3, traceJobs: 6, resamples: 2000, confidence: 0.95 });
    expect(report.runs.map((r) => r.seed)).toEqual([42, 43, 44]);
    for (const r of report.runs) {
      expect(r.policy.seed).toBe(r.seed);
      expect(r.diffAt100).toBe(r.policy.gpuAllocPctAt100 - r.reference.gpuAllocPctAt100);
    }
    // Every policy places 5 of these tasks: no difference, and an interval of none.
    expect(report.at100).toEqual({ policy: 83.33, reference: 83.33, diff: 0, interval: [0, 0] });
  });
});
