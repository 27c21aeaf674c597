import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fitsEmptyNode } from '../../internal/scheduler/index.js';
import { synthesizeTrace, traceShares, type SynthOptions } from '../../internal/simulate/trace-synth.js';
import { formatTraceTable, nodeViewsOf, parseTraceJobs, parseTraceNodes, parseTraceTable, type TraceJob } from '../../internal/simulate/trace.js';
import { isTitanError } from '../../pkg/model/index.js';
import { sharedDir } from '../harness/shared.js';

const read = (f: string): string => readFileSync(path.join(sharedDir(), 'traces/openb', f), 'utf8');
const nodes = parseTraceNodes(read('openb_node_list_gpu_node.csv'));
const baseText = read('openb_pod_list_default.csv');
const base = parseTraceTable(baseText);
const baseJobs = parseTraceJobs(baseText);

/** The output as a file again, read back by the simulator's own parser. */
function synth(options: SynthOptions): { csv: string; jobs: TraceJob[] } {
  const { table } = synthesizeTrace(base, nodes, options);
  const csv = formatTraceTable(table.header, table.rows);
  return { csv, jobs: parseTraceJobs(csv) };
}

/** Shares counted here, apart from the code under test: CPU-only of tasks; sharing and multi-GPU of the GPU request; constrained of GPU tasks. */
function shares(jobs: readonly TraceJob[]): { cpuOnly: number; gpuShare: number; multiGpu: number; constrained: number } {
  const gpu = jobs.filter((j) => j.resources.gpuMilli > 0);
  const milli = (list: readonly TraceJob[]): number => list.reduce((sum, j) => sum + j.resources.gpuMilli, 0);
  return {
    cpuOnly: (jobs.length - gpu.length) / jobs.length,
    gpuShare: milli(gpu.filter((j) => j.resources.gpuMilli < 1000)) / milli(gpu),
    multiGpu: milli(gpu.filter((j) => j.resources.gpuMilli > 1000)) / milli(gpu),
    constrained: gpu.filter((j) => j.gpuModels).length / gpu.length,
  };
}

const baseShares = shares(baseJobs);

describe('titan trace synth: synthesizeTrace', () => {
  it('measures the published openb variants as their names say (the measures the knobs use)', () => {
    expect(traceShares(parseTraceJobs(read('openb_pod_list_cpu050.csv'))).cpuOnly).toBeCloseTo(0.05, 2);
    expect(traceShares(parseTraceJobs(read('openb_pod_list_gpushare40.csv'))).gpuShare).toBeCloseTo(0.4, 2);
    expect(Math.abs(traceShares(parseTraceJobs(read('openb_pod_list_multigpu20.csv'))).multiGpu - 0.2)).toBeLessThan(0.01);
    expect(traceShares(baseJobs)).toMatchObject({ cpuOnly: baseShares.cpuOnly, gpuShare: baseShares.gpuShare, multiGpu: baseShares.multiGpu });
  });

  it("reaches each published variant's share: cpu050 is --cpu-only 0.38, multigpu20 --multi-gpu 2.8, gpushare40 --gpu-share 1.41", () => {
    // Each variant holds something else fixed (docs/scheduling.md), so only the share its name gives is compared.
    for (const [file, options, share] of [
      ['openb_pod_list_cpu050.csv', { seed: 1, cpuOnly: 0.38 }, 'cpuOnly'],
      ['openb_pod_list_multigpu20.csv', { seed: 1, multiGpu: 2.8 }, 'multiGpu'],
      ['openb_pod_list_gpushare40.csv', { seed: 1, gpuShare: 1.41 }, 'gpuShare'],
    ] as const) {
      const published = shares(parseTraceJobs(read(file)))[share];
      expect(Math.abs(shares(synth(options).jobs)[share] - published)).toBeLessThanOrEqual(0.01);
    }
  });

  it('is deterministic by seed', () => {
    const options = { seed: 7, cpuOnly: 2, gpuShare: 1.5, multiGpu: 0.5, constrained: 0.3 };
    const first = synth(options).csv;
    expect(synth(options).csv).toBe(first);
    expect(synth({ ...options, seed: 8 }).csv).not.toBe(first);
  });

  it.each([
    { seed: 1, cpuOnly: 0.25 },
    { seed: 2, cpuOnly: 3, gpuShare: 2, multiGpu: 3, constrained: 0.5 },
    { seed: 3, gpuShare: 0.5, multiGpu: 0.5, constrained: 0.33 },
    { seed: 4, cpuOnly: 1.7, gpuShare: 1.4, multiGpu: 2, constrained: 0.1 },
  ])('reaches the requested shares within 1 point: %o', (options) => {
    const achieved = shares(synth(options).jobs);
    expect(Math.abs(achieved.cpuOnly - baseShares.cpuOnly * (options.cpuOnly ?? 1))).toBeLessThanOrEqual(0.01);
    expect(Math.abs(achieved.gpuShare - baseShares.gpuShare * (options.gpuShare ?? 1))).toBeLessThanOrEqual(0.01);
    expect(Math.abs(achieved.multiGpu - baseShares.multiGpu * (options.multiGpu ?? 1))).toBeLessThanOrEqual(0.01);
    expect(Math.abs(achieved.constrained - (options.constrained ?? 0))).toBeLessThanOrEqual(0.01);
  });

  it('makes every task valid for the cluster, its gpu_spec included, from copies of base rows', () => {
    const views = nodeViewsOf(nodes);
    const { table } = synthesizeTrace(base, nodes, { seed: 5, cpuOnly: 3, gpuShare: 2, multiGpu: 3, constrained: 0.5 });
    const jobs = parseTraceJobs(formatTraceTable(table.header, table.rows));
    expect(jobs.filter((j) => !views.some((v) => fitsEmptyNode(j, v))).map((j) => j.name)).toEqual([]);
    const models = new Set(nodes.map((n) => n.model));
    expect(jobs.flatMap((j) => j.gpuModels ?? []).filter((m) => !models.has(m))).toEqual([]);
    expect(table.header).toEqual(base.header);
    // Apart from name and gpu_spec, each row is one of the base's: a type keeps its size distribution.
    const key = (row: Record<string, string>): string => base.header.filter((h) => h !== 'name' && h !== 'gpu_spec').map((h) => row[h]).join(',');
    const baseRows = new Set(base.rows.map(key));
    expect(table.rows.filter((r) => !baseRows.has(key(r)))).toEqual([]);
    expect(new Set(table.rows.map((r) => r.name)).size).toBe(table.rows.length);
    expect(table.rows[0].name).toBe('synth-5-00000');
  });

  it("keeps the base's constraints unless asked, and removes them to reach 0%", () => {
    const again = synthesizeTrace(base, nodes, { seed: 6, constrained: 0.4 }).table;
    expect(shares(parseTraceJobs(formatTraceTable(again.header, again.rows))).constrained).toBeCloseTo(0.4, 3);
    const kept = synthesizeTrace(again, nodes, { seed: 6 });
    expect(kept.achieved.constrained).toBeCloseTo(0.4, 2);
    const cleared = synthesizeTrace(again, nodes, { seed: 6, constrained: 0 });
    expect(cleared.achieved.constrained).toBe(0);
  });

  it('leaves out base tasks that fit no node', () => {
    const small = parseTraceNodes('sn,cpu_milli,memory_mib,gpu,model\nn,8000,16384,2,T4\n');
    const table = parseTraceTable('name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1000,1024,1,500\nb,1000,1024,1,1000\nc,1000,1024,4,1000\nd,1000,1024,0,0\n');
    const result = synthesizeTrace(table, small, { seed: 1 });
    expect(result.dropped).toBe(1);
    expect(result.table.rows.map((r) => r.num_gpu)).not.toContain('4');
  });

  it.each([
    [{ seed: 1, cpuOnly: 0.24 }, '--cpu-only'],
    [{ seed: 1, cpuOnly: 3.5 }, '--cpu-only'],
    [{ seed: 1, gpuShare: 2.1 }, '--gpu-share'],
    [{ seed: 1, gpuShare: 0.49 }, '--gpu-share'],
    [{ seed: 1, multiGpu: 3.1 }, '--multi-gpu'],
    [{ seed: 1, multiGpu: Number.NaN }, '--multi-gpu'],
    [{ seed: 1, constrained: 0.51 }, '--constrained'],
    [{ seed: 1, constrained: -0.1 }, '--constrained'],
    [{ seed: -1 }, '--seed'],
    [{ seed: 1.5 }, '--seed'],
  ])('rejects %o naming %s', (options, flag) => {
    let error: unknown;
    try {
      synthesizeTrace(base, nodes, options);
    } catch (err) {
      error = err;
    }
    expect(isTitanError(error, 'InvalidInput')).toBe(true);
    expect((error as Error).message.startsWith(`${flag}: `)).toBe(true);
  });
});
