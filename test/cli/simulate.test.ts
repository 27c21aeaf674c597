import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sharedDir } from '../harness/shared.js';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'titan-simulate-'));
const file = (name: string, text: string): string => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
const nodes = file('nodes.csv', 'sn,cpu_milli,memory_mib,gpu,model\nsmall,1000,4096,1,T4\nbig,8000,16384,2,T4\n');
const jobs = file('jobs.csv', `name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n${[0, 1, 2, 3, 4, 5].map((i) => `t${i},1000,1024,1,500,`).join('\n')}\n`);

describe('titan simulate', () => {
  it('prints per-seed figures and medians as JSON', async () => {
    const res = await runCli(['simulate', '--nodes', nodes, '--jobs', jobs, '--seeds', '3', '--policy', 'binpack', '-o', 'json']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout);
    expect(report).toMatchObject({ policy: 'binpack', nodes: 2, gpus: 3, traceJobs: 6, tune: 1.3 });
    expect(report.runs.map((r: { seed: number }) => r.seed)).toEqual([42, 43, 44]);
    expect(report.median).toMatchObject({ placed: 5, failed: 2 });
    expect(report.median.gpuAllocPctAt100).toBe(83.33);
  });

  it('prints a table for people, with the default policy', async () => {
    const res = await runCli(['simulate', '--nodes', nodes, '--jobs', jobs]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^policy fgd: 2 nodes, 3 GPUs, 6 trace jobs, arrivals to 130% of GPU/);
    expect(res.stdout).toMatch(/SEED\s+GPU ALLOC % AT 100%\s+AT 130%\s+FRAGMENTED GPU %\s+PLACED\s+FAILED/);
    expect(res.stdout).toMatch(/\n42\s+83\.33\s+83\.33\s+16\.67\s+5\s+2/);
  });

  it('runs a reference policy (--policy bestfit)', async () => {
    const res = await runCli(['simulate', '--nodes', nodes, '--jobs', jobs, '--policy', 'bestfit', '-o', 'json']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ policy: 'bestfit', median: { placed: 5, failed: 2 } });
  });

  it('compares a policy with a reference seed by seed on a cut of openb (--compare)', async () => {
    // Every 20th openb node and every 27th task of the default trace.
    const cut = (name: string, keep: (i: number) => boolean): string => {
      const [header, ...rows] = readFileSync(path.join(sharedDir(), 'traces/openb', name), 'utf8').trim().split('\n');
      return file(`cut-${name}`, [header, ...rows.filter((_, i) => keep(i))].join('\n'));
    };
    const args = ['simulate', '--nodes', cut('openb_node_list_gpu_node.csv', (i) => i % 20 === 0), '--jobs', cut('openb_pod_list_default.csv', (i) => i % 27 === 0)];
    const res = await runCli([...args, '--policy', 'fgd', '--compare', 'fgd-paper', '--seeds', '5', '-o', 'json']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout);
    expect(report).toMatchObject({ policy: 'fgd', reference: 'fgd-paper', nodes: 61, gpus: 314, traceJobs: 302, resamples: 2000, confidence: 0.95 });
    expect(report.runs.map((r: { seed: number }) => r.seed)).toEqual([42, 43, 44, 45, 46]);
    // fgd-paper's own figures on this cut (test/unit/simulate-reference.test.ts pins seeds 42 and 43).
    expect(report.runs[0].reference.gpuAllocPctAt100).toBe(94.76);
    for (const r of report.runs) expect(r.diffAt100).toBeCloseTo(r.policy.gpuAllocPctAt100 - r.reference.gpuAllocPctAt100, 9);
    expect(report.at100.interval[0]).toBeLessThanOrEqual(report.at100.diff);
    expect(report.at100.interval[1]).toBeGreaterThanOrEqual(report.at100.diff);
    const table = await runCli([...args, '--policy', 'fgd', '--compare', 'fgd-paper', '--seeds', '5']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^fgd minus fgd-paper, GPU allocated %/);
    expect(table.stdout).toMatch(/\nmedian\s+\d+\.\d\d\s+\d+\.\d\d\s+[+-]\d+\.\d\d/);
    expect(table.stdout).toMatch(/\n95% interval\s+-\s+-\s+\[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]/);
    // Same seeds, same output: the arrivals and the bootstrap are seeded.
    const again = await runCli([...args, '--policy', 'fgd', '--compare', 'fgd-paper', '--seeds', '5', '-o', 'json']);
    expect(JSON.parse(again.stdout).at130).toEqual(report.at130);
  });

  it('runs seeds on worker threads with the figures of one thread, byte for byte but the seconds (--threads)', async () => {
    const cut = (name: string, keep: (i: number) => boolean): string => {
      const [header, ...rows] = readFileSync(path.join(sharedDir(), 'traces/openb', name), 'utf8').trim().split('\n');
      return file(`threads-${name}`, [header, ...rows.filter((_, i) => keep(i))].join('\n'));
    };
    const args = ['simulate', '--nodes', cut('openb_node_list_gpu_node.csv', (i) => i % 20 === 0), '--jobs', cut('openb_pod_list_gpushare40.csv', (i) => i % 27 === 0), '-o', 'json'];
    const withoutSeconds = (stdout: string): string => JSON.stringify(JSON.parse(stdout), (key, value: unknown) => (key === 'seconds' ? undefined : value));
    for (const more of [['--policy', 'fgd', '--seeds', '5'], ['--policy', 'fgd', '--compare', 'bestfit', '--seeds', '3']]) {
      const one = await runCli([...args, ...more, '--threads', '1']);
      const three = await runCli([...args, ...more, '--threads', '3']);
      expect(one.code).toBe(0);
      expect(three.stderr).toBe('');
      expect(three.code).toBe(0);
      expect(withoutSeconds(three.stdout)).toBe(withoutSeconds(one.stdout));
    }
    const bad = await runCli([...args, '--threads', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/threads/);
  });

  it('replays a trace in time with queues (--time)', async () => {
    const timed = file(
      'timed.csv',
      `name,cpu_milli,memory_mib,num_gpu,gpu_milli,team,creation_time,deletion_time\n${[0, 1, 2, 3].map((i) => `t${i},1000,1024,1,1000,${i % 2 ? 'x' : 'y'},0,10`).join('\n')}\n`,
    );
    const res = await runCli(['simulate', '--time', '--nodes', nodes, '--jobs', timed, '--queue-column', 'team', '--queue', 'x=1', '--queue', 'y=1', '-o', 'json']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout);
    expect(report).toMatchObject({ jobs: 4, started: 4, neverStarted: 0 });
    expect(report.queues.map((q: { name: string }) => q.name)).toEqual(['default', 'x', 'y']);
  });

  it.each([
    [['--jobs', jobs], /--nodes: missing: give --nodes FILE\.csv/],
    [['--nodes', path.join(dir, 'absent.csv'), '--jobs', jobs], /--nodes: cannot read .*absent\.csv: ENOENT/],
    [['--nodes', file('bad.csv', 'sn,cpu,memory_mib,gpu,model\nx,1,1,1,T4\n'), '--jobs', jobs], /bad\.csv: missing column cpu_milli/],
    [['--nodes', nodes, '--jobs', jobs, '--policy', 'fastest'], /unknown policy "fastest" \(known: binpack, spread, fgd, fgd-paper, bestfit\)/],
    [['--nodes', nodes, '--jobs', jobs, '--compare', 'fastest'], /compare: unknown policy "fastest"/],
    [['--nodes', nodes, '--jobs', jobs, '--time', '--compare', 'bestfit'], /--compare belongs to the protocol run, not --time/],
    [['--nodes', nodes, '--jobs', jobs, '--time', '--policy', 'bestfit'], /"bestfit" is a reference policy/],
    [['--nodes', nodes, '--jobs', jobs, '--tune', '0.5'], /tune: "0\.5" must be a number from 1 to 10/],
    [['--nodes', nodes, '--jobs', jobs, '--seeds', '0'], /seeds: must be from 1 to 1000/],
    [['--nodes', nodes, '--jobs', jobs, '--queue', 'a=1'], /queue: --queue needs --time/],
    [['--nodes', nodes, '--jobs', jobs, '--time'], /--time needs creation_time and deletion_time on every row/],
    [['--nodes', nodes, '--jobs', jobs, '--time', '--queue-column', 'team'], /missing column team/],
  ])('rejects bad input with a clear error and exit code 2: %s', async (args, message) => {
    const res = await runCli(['simulate', ...args]);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(message);
  });
});
