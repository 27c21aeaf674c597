import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedDir } from '../harness/shared.js';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'titan-simulate-bound-'));
/** Every `every`-th row of an openb file, with its header. */
const cut = (name: string, every: number): string => {
  const [header, ...rows] = readFileSync(path.join(sharedDir(), 'traces/openb', name), 'utf8').trim().split('\n');
  const file = path.join(dir, name);
  writeFileSync(file, [header, ...rows.filter((_, i) => i % every === 0)].join('\n'));
  return file;
};
const trace = ['--nodes', cut('openb_node_list_gpu_node.csv', 20), '--jobs', cut('openb_pod_list_default.csv', 27)];

interface Figures {
  seed: number;
  gpuAllocPctAt100: number;
  gpuAllocPctAt130: number;
}

describe('titan simulate --bound', () => {
  it('adds per seed the bound and each policy gap to it, on a cut of openb', async () => {
    const res = await runCli(['simulate', ...trace, '--policy', 'fgd', '--compare', 'fgd-paper', '--seeds', '3', '--bound', '-o', 'json'], { timeoutMs: 120_000 });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout);
    expect(report).toMatchObject({ policy: 'fgd', reference: 'fgd-paper', nodes: 61, gpus: 314 });
    const bound = report.bound as { runs: (Figures & { gaps: { policy: string; gapAt100: number; gapAt130: number }[] })[]; median: Figures; method: string };
    expect(bound.method).toMatch(/LP relaxation/);
    expect(bound.runs.map((r) => r.seed)).toEqual([42, 43, 44]);
    bound.runs.forEach((b, i) => {
      const run = report.runs[i] as { policy: Figures; reference: Figures };
      expect(b.gaps.map((g) => g.policy)).toEqual(['fgd', 'fgd-paper']);
      for (const [gap, figures] of [
        [b.gaps[0], run.policy],
        [b.gaps[1], run.reference],
      ] as const) {
        expect(gap.gapAt100).toBeCloseTo(b.gpuAllocPctAt100 - figures.gpuAllocPctAt100, 9);
        expect(gap.gapAt130).toBeCloseTo(b.gpuAllocPctAt130 - figures.gpuAllocPctAt130, 9);
        expect(gap.gapAt100).toBeGreaterThanOrEqual(0);
        expect(gap.gapAt130).toBeGreaterThanOrEqual(0);
      }
      expect(b.gpuAllocPctAt130).toBeLessThanOrEqual(100);
    });
  });

  it('prints the bound table after the run for people', async () => {
    const res = await runCli(['simulate', ...trace, '--bound'], { timeoutMs: 120_000 });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^policy fgd: 61 nodes, 314 GPUs/);
    expect(res.stdout).toMatch(/\nupper bound on GPU allocated % for any policy that never moves a task/);
    expect(res.stdout).toMatch(/\nSEED\s+BOUND AT 100%\s+AT 130%\s+FGD GAP AT 100%\s+AT 130%\n42\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d\d\n/);
  });

  it('refuses --bound with --time, before any work', async () => {
    const res = await runCli(['simulate', ...trace, '--time', '--bound']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--bound belongs to the protocol run/);
    expect(res.stdout).toBe('');
  });
});
