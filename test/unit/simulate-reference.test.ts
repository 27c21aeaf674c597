import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { newNodeView, type JobRequest, type NodeView } from '../../internal/scheduler/index.js';
import { allocatedAt, numpyRound, numpySum, pythonRound } from '../../internal/simulate/alloc-window.js';
import { GoRand } from '../../internal/simulate/go-rand.js';
import { bestFitScore } from '../../internal/simulate/reference-bestfit.js';
import { fgdPaperPolicy, paperFragmentation } from '../../internal/simulate/reference-fgd.js';
import { simulateSeed } from '../../internal/simulate/run.js';
import { parseTraceJobs, parseTraceNodes } from '../../internal/simulate/trace.js';
import { typicalTasks } from '../../internal/simulate/typical-tasks.js';
import { sharedDir } from '../harness/shared.js';

const MiB = 2 ** 20;
const job = (cpu: number, gpuMilli: number, memory = MiB): JobRequest => ({ id: 'j', kind: 'docker', resources: { cpu, memory, gpuMilli } });

function node(cpu: number, gpuFree: number[], allocatedCpu = 0): NodeView {
  const view = newNodeView({
    id: 'n',
    capacity: { cpu, memory: 1024 * MiB, gpuMilli: gpuFree.length * 1000 },
    gpus: gpuFree.map((_, index) => ({ index, uuid: '', model: 'T4', memory: 0 })),
    labels: {},
    executors: ['docker'],
  });
  view.allocated.cpu = allocatedCpu;
  view.allocated.gpuMilli = gpuFree.reduce((sum, f) => sum + 1000 - f, 0);
  gpuFree.forEach((f, i) => (view.gpuFree[i] = f));
  return view;
}

describe("Go's math/rand", () => {
  it('draws what Go draws for a seed', () => {
    // Go: rand.Seed(1); rand.Int63() and rand.Intn(100) ten times.
    expect(new GoRand(1).int63()).toBe(5577006791947779410n);
    const r = new GoRand(1);
    expect(Array.from({ length: 10 }, () => r.intn(100))).toEqual([81, 87, 47, 59, 81, 18, 25, 40, 56, 0]);
  });

  it('permutes and shuffles every element once', () => {
    expect(new GoRand(42).perm(50).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const xs = Array.from({ length: 50 }, (_, i) => i);
    new GoRand(42).shuffle(xs.length, (i, j) => ([xs[i], xs[j]] = [xs[j], xs[i]]));
    expect([...xs].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(xs).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
});

describe("the artefact's allocation figure", () => {
  it('rounds as Python and numpy do', () => {
    expect(pythonRound(99.5, 0)).toBe(100);
    expect(pythonRound(100.5, 0)).toBe(100); // half to even
    expect(pythonRound(93.125, 2)).toBe(93.12); // an exact half in binary
    expect(pythonRound(2.675, 2)).toBe(2.67); // 2.67499999...
    expect(pythonRound(95.23456, 2)).toBe(95.23);
    expect(numpyRound(0.125, 2)).toBe(0.12);
    expect(numpySum([0.1, 0.2, 0.3])).toBe(0.1 + 0.2 + 0.3);
    const many = Array.from({ length: 300 }, (_, i) => i / 7);
    expect(numpySum(many)).toBeCloseTo((299 * 300) / 2 / 7, 9);
  });

  it('is the mean over the tasks whose arrived share rounds to the mark, else within a point of it', () => {
    // 10 GPUs: 1000 milli = 10%. Arrivals at 99.6%, 100.4% and 101% of them.
    const samples = [
      { arrivedMilli: 9_960, allocatedMilli: 9_000 },
      { arrivedMilli: 10_040, allocatedMilli: 9_100 },
      { arrivedMilli: 10_100, allocatedMilli: 9_100 },
    ];
    expect(allocatedAt(samples, 10, 100)).toBe(90.5);
    expect(allocatedAt(samples, 10, 102)).toBe(91);
    expect(allocatedAt(samples, 10, 130)).toBeUndefined();
  });
});

describe("the artefact's task types", () => {
  it('keeps the most frequent types up to 95% of tasks, ties to the larger, shares renormalized', () => {
    const jobs = [
      ...Array.from({ length: 50 }, () => job(4000, 500)),
      ...Array.from({ length: 30 }, () => job(8000, 1000, 2 * MiB)),
      ...Array.from({ length: 15 }, () => job(8000, 1000)), // memory differs: the same type
      ...Array.from({ length: 4 }, () => job(2000, 0)),
      job(1000, 2000),
    ];
    const typical = typicalTasks(jobs);
    expect(typical.map((t) => [t.cpu, t.milli, t.devices])).toEqual([
      [4000, 500, 1],
      [8000, 1000, 1],
    ]);
    expect(typical.map((t) => t.weight)).toEqual([50 / 100 / (95 / 100), 45 / 100 / (95 / 100)]);
    expect(typicalTasks([job(1000, 0), job(2000, 0)]).map((t) => t.cpu)).toEqual([2000, 1000]);
  });
});

describe('reference policies', () => {
  const typical = [
    { cpu: 1000, milli: 500, devices: 1, models: '', weight: 0.5 },
    { cpu: 2000, milli: 1000, devices: 1, models: '', weight: 0.25 },
    { cpu: 1000, milli: 0, devices: 0, models: '', weight: 0.25 },
  ];

  it("measure a node's fragmentation as the artefact does", () => {
    // Free 300 + 1000 milli, 4 cores. Half-GPU tasks fit: the 300 is a
    // fragment (0.5 × 300); whole GPUs fit: the 300 again (0.25 × 300); CPU
    // tasks count all free GPU (0.25 × 1300).
    expect(paperFragmentation({ cpuLeft: 4000, gpuLeft: [300, 1000], model: 'T4' }, typical)).toBe(150 + 75 + 325);
    // 1.5 cores: whole-GPU tasks lack CPU, all 1300 counts for them.
    expect(paperFragmentation({ cpuLeft: 1500, gpuLeft: [300, 1000], model: 'T4' }, typical)).toBe(150 + 325 + 325);
  });

  it('fgd-paper scores in whole points and puts a share on the device that fragments least', () => {
    const policy = fgdPaperPolicy([...Array.from({ length: 2 }, () => job(1000, 500)), job(2000, 1000), job(1000, 0)]);
    // A 500-milli share on a node with 500 and 1000 free: on device 0 it
    // fills a device (no new fragment), on device 1 it leaves a 500 fragment
    // that whole-GPU tasks cannot use.
    const view = node(8000, [500, 1000]);
    expect(policy.chooseGpuIndexes?.(job(1000, 500), view)).toEqual([0]);
    expect(Number.isInteger(policy.score(job(1000, 500), view))).toBe(true);
    expect(policy.score(job(1000, 500), view)).toBeGreaterThan(50);
  });

  it('bestfit prefers the node left with the least CPU and GPU', () => {
    // After a 1-core half-GPU task: (7000 / 128000 + 1500 / 8000) / 2 left.
    expect(bestFitScore(job(1000, 500), node(8000, [1000, 1000]))).toBe(Math.trunc((1 - (7000 / 128000) * 0.5 - (1500 / 8000) * 0.5) * 100));
    expect(bestFitScore(job(1000, 500), node(8000, [500, 0], 6000))).toBeGreaterThan(bestFitScore(job(1000, 500), node(8000, [1000, 1000])));
  });
});

describe('reference runs on cuts of the openb traces', () => {
  const read = (file: string, keep: (i: number) => boolean): string => {
    const [header, ...rows] = readFileSync(path.join(sharedDir(), 'traces/openb', file), 'utf8').trim().split('\n');
    return [header, ...rows.filter((_, i) => keep(i))].join('\n');
  };
  // Every 20th node (61 nodes, 314 GPUs) and every 27th task (302 tasks).
  const nodes = parseTraceNodes(read('openb_node_list_gpu_node.csv', (i) => i % 20 === 0));

  it.each([
    ['default', 'fgd-paper', 42, 94.76, 95.24, 374, 100],
    ['default', 'bestfit', 42, 93.11, 93.58, 369, 105],
    ['default', 'fgd-paper', 43, 95.7, 95.81, 371, 90],
    ['gpushare40', 'fgd-paper', 42, 93.69, 93.94, 394, 118],
    ['gpushare40', 'bestfit', 43, 91.81, 91.96, 412, 156],
  ] as const)('%s, %s, seed %d: %d / %d', (trace, policy, seed, at100, at130, placed, failed) => {
    const jobs = parseTraceJobs(read(`openb_pod_list_${trace}.csv`, (i) => i % 27 === 0));
    const result = simulateSeed(nodes, jobs, { policy, seed, tune: 1.3 });
    expect(result).toMatchObject({ gpuAllocPctAt100: at100, gpuAllocPctAt130: at130, placed, failed });
  });
});

describe('the published per-seed figures (full openb default trace, seed 42)', () => {
  // From the FGD artefact's expected results (analysis_allo_discrete.csv):
  // GPU allocated % at 100% / 130% arrived, openb_pod_list_default, seed 42.
  const read = (f: string): string => readFileSync(path.join(sharedDir(), 'traces/openb', f), 'utf8');
  const nodes = parseTraceNodes(read('openb_node_list_gpu_node.csv'));
  const jobs = parseTraceJobs(read('openb_pod_list_default.csv'));

  it.each([
    ['bestfit', 92.94, 93.13],
    ['fgd-paper', 95.14, 95.29],
  ] as const)('%s reproduces %d / %d', (policy, at100, at130) => {
    const result = simulateSeed(nodes, jobs, { policy, seed: 42, tune: 1.3 });
    expect(result.gpuAllocPctAt100).toBeCloseTo(at100, 6);
    expect(result.gpuAllocPctAt130).toBeCloseTo(at130, 6);
    // A full simulation of the openb trace: seconds alone, minutes on a loaded machine; the deadline is a safety net.
  }, 600_000);
});
