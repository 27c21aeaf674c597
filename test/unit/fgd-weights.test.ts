import { describe, expect, it } from 'vitest';
import { fgdWeights } from '../../internal/scheduler/fgd-weights.js';
import { WorkloadMix, type JobRequest } from '../../internal/scheduler/index.js';

const job = (id: string, cpu: number, gpuMilli: number): JobRequest => ({ id, kind: 'docker', resources: { cpu, memory: 1024, gpuMilli } });

describe('fgd weights follow the mix', () => {
  it('keep stranding and strong GPU packing while CPU-only jobs take little of the CPU', () => {
    expect(fgdWeights(0)).toEqual({ stranding: 2, gpuPacking: 0.1, cpuJobFreeGpus: 0.05, cpuRichNodes: 0 });
    expect(fgdWeights(0.25)).toEqual({ stranding: 2, gpuPacking: 0.1, cpuJobFreeGpus: 0.05, cpuRichNodes: 0 });
  });

  it('fade stranding out between 25% and 40% CPU-only CPU, then GPU packing to a tie-break by 55%', () => {
    expect(fgdWeights(0.325).stranding).toBeCloseTo(1, 9);
    expect(fgdWeights(0.4)).toEqual({ stranding: 0, gpuPacking: 0.1, cpuJobFreeGpus: 0.05, cpuRichNodes: 0 });
    expect(fgdWeights(0.475).gpuPacking).toBeCloseTo(0.06, 9);
    expect(fgdWeights(0.55)).toEqual({ stranding: 0, gpuPacking: 0.02, cpuJobFreeGpus: 0.05, cpuRichNodes: 1 });
    expect(fgdWeights(1)).toEqual({ stranding: 0, gpuPacking: 0.02, cpuJobFreeGpus: 0.05, cpuRichNodes: 1 });
  });

  it('fade keeping GPU jobs off CPU-rich nodes in between 40% and 55%, once measured on 200 submissions', () => {
    expect(fgdWeights(0.4).cpuRichNodes).toBe(0);
    expect(fgdWeights(0.475).cpuRichNodes).toBeCloseTo(0.5, 9);
    expect(fgdWeights(0.55, 200).cpuRichNodes).toBe(1);
    expect(fgdWeights(0.55, 199).cpuRichNodes).toBe(0);
    expect(fgdWeights(1, 10).cpuRichNodes).toBe(0);
  });

  it('never rise as the CPU-only share grows, but the CPU-rich weight, which never falls', () => {
    let last = fgdWeights(0);
    for (let share = 0.01; share <= 1; share += 0.01) {
      const w = fgdWeights(share);
      expect(w.stranding).toBeLessThanOrEqual(last.stranding);
      expect(w.gpuPacking).toBeLessThanOrEqual(last.gpuPacking);
      expect(w.cpuRichNodes).toBeGreaterThanOrEqual(last.cpuRichNodes);
      last = w;
    }
  });
});

describe('WorkloadMix.cpuOnlyShare', () => {
  it('is the CPU-only jobs’ share of the CPU submitted, updated with the mix', () => {
    const mix = new WorkloadMix(8);
    expect(mix.cpuOnlyShare()).toBe(0);
    mix.observe(job('c', 3000, 0));
    mix.observe(job('g', 1000, 1000));
    expect(mix.cpuOnlyShare()).toBeCloseTo(0.75, 9);
    const version = mix.version;
    // CPU-only jobs alone do not rebuild the mix: cached scores stay valid.
    mix.observe(job('c2', 4000, 0));
    expect(mix.cpuOnlyShare()).toBeCloseTo(0.75, 9);
    expect(mix.version).toBe(version);
    mix.observe(job('g2', 2000, 500));
    expect(mix.cpuOnlyShare()).toBeCloseTo(7000 / 10000, 9);
  });

  it('counts the submissions it was measured on, up to the window', () => {
    const mix = new WorkloadMix(4);
    expect(mix.submissions()).toBe(0);
    mix.observe(job('c', 3000, 0));
    mix.observe(job('g', 1000, 1000));
    expect(mix.submissions()).toBe(2);
    for (let i = 0; i < 8; i++) mix.observe(job(`g${i}`, 1000, 1000));
    expect(mix.submissions()).toBe(4);
  });

  it('forgets jobs older than the window', () => {
    const mix = new WorkloadMix(4);
    for (let i = 0; i < 4; i++) mix.observe(job(`c${i}`, 1000, 0));
    for (let i = 0; i < 4; i++) mix.observe(job(`g${i}`, 1000, 1000));
    expect(mix.cpuOnlyShare()).toBe(0);
  });
});
