import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedDir } from '../harness/shared.js';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'titan-trace-synth-'));
const openb = (f: string): string => path.join(sharedDir(), 'traces/openb', f);
const nodes = openb('openb_node_list_gpu_node.csv');
const base = openb('openb_pod_list_default.csv');

describe('titan trace synth', () => {
  it('writes the trace to --out and prints the shares it reached as JSON', async () => {
    const out = path.join(dir, 'synth.csv');
    const args = ['trace', 'synth', '--base', base, '--nodes', nodes, '--seed', '3', '--gpu-share', '1.5', '--constrained', '0.2', '--out', out, '-o', 'json'];
    const res = await runCli(args, { timeoutMs: 120_000 });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const summary = JSON.parse(res.stdout);
    expect(summary).toMatchObject({ seed: 3, out, dropped: 0 });
    expect(Math.abs(summary.achieved.gpuShare - summary.target.gpuShare)).toBeLessThanOrEqual(0.01);
    expect(summary.achieved.constrained).toBeCloseTo(0.2, 2);
    const csv = readFileSync(out, 'utf8');
    expect(csv.split('\n')[0]).toBe(readFileSync(base, 'utf8').split('\n')[0]);
    expect(csv.trim().split('\n')).toHaveLength(summary.tasks + 1);
  }, 180_000);

  it('prints the trace on stdout without --out', async () => {
    const small = path.join(dir, 'small.csv');
    writeFileSync(small, 'name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1000,1024,1,500\nb,1000,1024,1,1000\nc,1000,1024,0,0\n');
    const res = await runCli(['trace', 'synth', '--base', small, '--nodes', nodes, '--seed', '9'], { timeoutMs: 120_000 });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toBe('name,cpu_milli,memory_mib,num_gpu,gpu_milli\nsynth-9-0000,1000,1024,1,500\nsynth-9-0001,1000,1024,1,1000\nsynth-9-0002,1000,1024,0,0\n');
  }, 180_000);

  it.each([
    [['--cpu-only', '5'], /--cpu-only: 5 must be from 0\.25 to 3/],
    [['--multi-gpu', 'lots'], /--multi-gpu: "lots" must be a number from 0\.5 to 3/],
    [['--seed', '-2'], /--seed: -2 must be a whole number/],
  ])('rejects %s with exit code 2 and writes nothing', async (flags, message) => {
    const out = path.join(dir, `rejected-${flags[0].slice(2)}.csv`);
    const res = await runCli(['trace', 'synth', '--base', base, '--nodes', nodes, ...flags, '--out', out], { timeoutMs: 120_000 });
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
  }, 180_000);
});
