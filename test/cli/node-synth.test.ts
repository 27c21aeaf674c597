import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedDir } from '../harness/shared.js';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'titan-node-synth-'));
const openbNodes = path.join(sharedDir(), 'traces/openb/openb_node_list_gpu_node.csv');
const file = (name: string, text: string): string => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('titan trace synth-nodes', () => {
  it('writes 5,000 nodes from the openb GPU node list to --out, summary as JSON', async () => {
    const out = path.join(dir, 'nodes5000.csv');
    const res = await runCli(['trace', 'synth-nodes', '--base', openbNodes, '--count', '5000', '--seed', '1', '--out', out, '-o', 'json'], { timeoutMs: 120_000 });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ baseNodes: 1213, nodes: 5000, seed: 1, out });
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('sn,cpu_milli,memory_mib,gpu,model');
    expect(lines).toHaveLength(5001);
  }, 180_000);

  it('prints the list on stdout without --out', async () => {
    const base = file('base.csv', 'sn,cpu_milli,memory_mib,gpu,model\na,1000,4096,1,T4\nb,8000,16384,2,V100M16\n');
    const res = await runCli(['trace', 'synth-nodes', '--base', base, '--count', '4']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toBe('sn,cpu_milli,memory_mib,gpu,model\na,1000,4096,1,T4\nb,8000,16384,2,V100M16\na-r1,1000,4096,1,T4\nb-r1,8000,16384,2,V100M16\n');
  });

  it('rejects a bad --count with exit code 2 and writes nothing', async () => {
    const out = path.join(dir, 'rejected.csv');
    const res = await runCli(['trace', 'synth-nodes', '--base', openbNodes, '--count', '0', '--out', out]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--count/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('titan simulate --sample-nodes', () => {
  const nodes = file('nodes.csv', 'sn,cpu_milli,memory_mib,gpu,model\nsmall,1000,4096,1,T4\nbig,8000,16384,2,T4\n');
  const jobs = file('jobs.csv', `name,cpu_milli,memory_mib,num_gpu,gpu_milli\n${[0, 1, 2, 3, 4, 5].map((i) => `t${i},1000,1024,1,500`).join('\n')}\n`);

  it('takes all or a count of nodes for Titan\'s policies', async () => {
    for (const sample of ['all', '1']) {
      const res = await runCli(['simulate', '--nodes', nodes, '--jobs', jobs, '--sample-nodes', sample, '-o', 'json']);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({ policy: 'fgd', nodes: 2 });
    }
  });

  it.each([
    [['--sample-nodes', '0'], /--sample-nodes: must be more than zero/],
    [['--sample-nodes', '10', '--policy', 'fgd-paper'], /reference policy: it scores every feasible node/],
  ])('rejects %s with exit code 2', async (flags, message) => {
    const res = await runCli(['simulate', '--nodes', nodes, '--jobs', jobs, ...flags]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
  });
});
