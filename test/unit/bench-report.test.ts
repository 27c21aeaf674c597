import { describe, expect, it } from 'vitest';
import { parseBenchOptions } from '../../scripts/bench/options.js';
import { clusterCapacityInJobs } from '../../scripts/bench/phases.js';
import { parseCpuSeconds, parseRssMiB } from '../../scripts/bench/proc-stats.js';
import { formatReport, jobsOfRun, renderTable, TARGETS, verdict, type BenchParameters, type BenchResult } from '../../scripts/bench/report.js';

const parameters: BenchParameters = {
  nodes: 1000,
  jobs: 20_000,
  rate: 500,
  latencyJobs: 2000,
  warmupMs: 0,
  nodeCpuMilli: 64_000,
  nodeMemoryBytes: 256 * 2 ** 30,
  jobCpuMilli: 100,
  jobMemoryBytes: 64 * 2 ** 20,
  complete: true,
  runMs: 0,
  ackConcurrency: 64,
  nodesPerLease: 100,
  ackDuringPlacement: false,
  retainJobs: null,
  retentionIntervalMs: null,
  etcd: 'own',
  prefix: '/titan-bench-x',
  apiClients: null,
};

function result(patch: Partial<BenchResult> = {}): BenchResult {
  return {
    etcdBatchedKeysPerSec: 30_000,
    etcdSequentialPutsPerSec: 800,
    submitJobsPerSec: 21_000,
    placementsPerSec: 5000,
    placementEtcdRatio: 0.33,
    dispatchP50Ms: 8,
    dispatchP99Ms: null,
    masterRssMiB: 200,
    etcdDbMiB: 50,
    etcdDbMiBBefore: null,
    etcdDbMiBAfter: null,
    api: null,
    details: {},
    parameters,
    command: 'npm run bench --',
    revision: 'abc1234',
    machine: { cpus: 2, cpuModel: 'test', memoryGiB: 4, node: 'v20', platform: 'linux', loadAverageAtStart: 1.5 },
    errors: [],
    ...patch,
  };
}

const target = (figure: string) => {
  const t = TARGETS.find((x) => x.figure === figure);
  if (!t) throw new Error(`no target for ${figure}`);
  return t;
};

describe('bench report', () => {
  it('judges each figure against its target', () => {
    const r = result();
    expect(verdict(target('placementsPerSec'), r)).toBe('missed');
    expect(verdict(target('submitJobsPerSec'), r)).toBe('met');
    expect(verdict(target('dispatchP50Ms'), r)).toBe('met');
    expect(verdict(target('dispatchP99Ms'), r)).toBe('not measured');
    expect(verdict(target('masterRssMiB'), result({ masterRssMiB: 300 }))).toBe('met');
  });

  it('says when a run does not match the conditions a target is stated for', () => {
    expect(target('placementsPerSec').mismatch(parameters)).toBeUndefined();
    expect(target('placementsPerSec').mismatch({ ...parameters, nodes: 100 })).toMatch(/1000 nodes, run had 100/);
    expect(target('masterRssMiB').mismatch(parameters)).toMatch(/100000 jobs known, run had 22000/);
    expect(target('masterRssMiB').mismatch({ ...parameters, jobs: 100_000 })).toBeUndefined();
    expect(target('masterRssMiB').mismatch({ ...parameters, jobs: 100_000, retainJobs: 10_000 })).toMatch(/every job still in etcd, run had --retain-jobs 10000/);
    expect(target('masterRssMiB').mismatch({ ...parameters, jobs: 100_000, retainJobs: 200_000 })).toBeUndefined();
  });

  it('reports etcd db size at start, at the end state and after retention', () => {
    const before = formatReport(result({ etcdDbMiBBefore: 0.0234, details: { jobsInEtcd: 22_000 } }));
    expect(before).toMatch(/etcd db size at start\s+0\.0234 MiB/);
    expect(before).toMatch(/etcd db size after retention\s+-/);
    expect(before).toMatch(/etcd db: 0\.0234 MiB at start, 50 MiB at the end state \(22000 jobs\), not measured after retention \(--retain-jobs\)/);
    const after = formatReport(
      result({
        etcdDbMiBBefore: 0.02,
        etcdDbMiB: 160,
        etcdDbMiBAfter: 161,
        parameters: { ...parameters, jobs: 100_000, retainJobs: 10_000 },
        details: { jobsInEtcd: 40_000, etcdDbInUseMiB: 150, etcdDbInUseMiBAfter: 21.5, jobsInEtcdAfterRetention: 10_000 },
      }),
    );
    expect(after).toMatch(/etcd db size after retention\s+161 MiB/);
    expect(after).toMatch(/160 MiB \(150 MiB in use\) at the end state \(40000 jobs\), 161 MiB \(21\.5 MiB in use\) after retention to 10000 jobs \(10000 left\) and compaction/);
    expect(after).toMatch(/master RSS\s+200 MiB\s+≤ 300 MiB\s+met \(target is for every job still in etcd, run had --retain-jobs 10000\)/);
  });

  it("shows the dispatch phase's CPU, the whole host's included", () => {
    const text = formatReport(result({ details: { dispatchCpu: { wallSeconds: 4, master: 1, etcd: 2, bench: 1.5, host: 7.5, hostCapacity: 8 } } }));
    expect(text).toMatch(/CPU during dispatch \(4 s wall\): master 1 s, etcd 2 s, bench 1\.5 s, whole host 7\.5 of 8 s/);
  });

  it("splits a dispatch at the master's plan", () => {
    const l = (p50: number, p99: number) => ({ count: 10, min: 0, mean: p50, p50, p90: p99, p99, max: p99 });
    const text = formatReport(result({ details: { dispatchToPlanMs: l(2, 16.3), dispatchPlanToSeenMs: l(3, 16.6) } }));
    expect(text).toMatch(/submit to the master's plan P50 2 ms, P99 16\.3 ms; plan to the node's watch P50 3 ms, P99 16\.6 ms/);
  });

  it('renders aligned tables and a report with errors', () => {
    expect(renderTable(['a', 'bb'], [['xxx', 'y']])).toBe('a    bb\n---  --\nxxx  y');
    const text = formatReport(result({ errors: ['dispatch: timed out'] }));
    expect(text).toMatch(/placements\s+5,000\/s\s+≥ 10,000\/s\s+missed/);
    expect(text).toMatch(/dispatch P99\s+-/);
    expect(text).toMatch(/errors:\n {2}dispatch: timed out/);
  });
});

describe('bench options', () => {
  it('has the documented defaults', () => {
    const o = parseBenchOptions([]);
    expect(o).toMatchObject({ nodes: 1000, jobs: 20_000, rate: 500, latencyJobs: 5000, warmupMs: 1000, nodeCpu: 64_000, nodeMemory: 256 * 2 ** 30 });
    expect(o).toMatchObject({ jobCpu: 100, jobMemory: 64 * 2 ** 20, output: 'table', complete: true, runMs: 0, keepJobs: false });
    expect(o.endpoints).toBeUndefined();
  });

  it('parses flags and rejects bad values naming the flag', () => {
    const o = parseBenchOptions(['--nodes', '100', '--jobs', '0', '--no-complete', '--output', 'json', '--endpoints', '10.0.0.1:2379', '--timeout', '5m']);
    expect(o).toMatchObject({ nodes: 100, jobs: 0, complete: false, output: 'json', endpoints: '10.0.0.1:2379', timeoutSeconds: 300 });
    expect(() => parseBenchOptions(['--nodes', '0'])).toThrow(/--nodes/);
    expect(() => parseBenchOptions(['--node-mem', 'lots'])).toThrow(/--node-mem/);
    expect(() => parseBenchOptions(['--etcd-txn-puts', '200'])).toThrow(/--etcd-txn-puts/);
    expect(parseBenchOptions(['--warmup', '0'])).toMatchObject({ warmupMs: 0 });
    expect(() => parseBenchOptions(['--warmup', 'soon'])).toThrow(/--warmup/);
  });

  it('passes retention settings through: none by default, a 10 s sweep with --retain-jobs', () => {
    expect(parseBenchOptions([])).not.toHaveProperty('retainJobs');
    expect(parseBenchOptions([])).not.toHaveProperty('retentionIntervalMs');
    expect(parseBenchOptions(['--retain-jobs', '10000'])).toMatchObject({ retainJobs: 10_000, retentionIntervalMs: 10_000 });
    expect(parseBenchOptions(['--retain-jobs', '0', '--retention-interval', '2s'])).toMatchObject({ retainJobs: 0, retentionIntervalMs: 2000 });
    expect(() => parseBenchOptions(['--retain-jobs', '-1'])).toThrow(/--retain-jobs/);
    expect(() => parseBenchOptions(['--retention-interval', '0'])).toThrow(/--retention-interval/);
  });

  it('runs the arrays phase with 10,000 tasks unless told otherwise, and reports it', () => {
    expect(parseBenchOptions([]).arrayTasks).toBe(10_000);
    expect(parseBenchOptions(['--array-tasks', '0']).arrayTasks).toBe(0);
    expect(() => parseBenchOptions(['--array-tasks', '100001'])).toThrow(/--array-tasks: at most 100000/);
    const text = formatReport(
      result({
        details: {
          arrays: {
            tasks: 10_000,
            submitSeconds: 0.35,
            submitTasksPerSec: 28_571,
            singleSubmitSeconds: 0.4,
            placementsPerSec: 9500,
            singlePlacementsPerSec: 9000,
            placementRatio: 1.06,
            startToFirstPlacementMs: 1000,
            singleStartToFirstPlacementMs: 1100,
            placementCpu: null,
            singlePlacementCpu: null,
            settled: [true, true],
          },
        },
      }),
    );
    expect(text).toContain('arrays: 10000 tasks submitted in 0.35 s (28,571 tasks/s, planning included; 10000 single jobs: 0.4 s); placed at 9,500/s against 9,000/s for single jobs (ratio 1.06, want ≥ 0.9)');
  });

  it('counts the dispatch warm-up among the jobs of a run', () => {
    expect(jobsOfRun({ jobs: 20_000, latencyJobs: 5000, rate: 500, warmupMs: 1000, apiClients: null })).toBe(25_500);
    expect(jobsOfRun({ jobs: 0, latencyJobs: 100, rate: 50, warmupMs: 0, apiClients: null })).toBe(100);
  });

  it('knows how many bench jobs the simulated cluster holds', () => {
    const o = parseBenchOptions([]);
    expect(clusterCapacityInJobs(o)).toBe(640 * 1000);
    expect(clusterCapacityInJobs({ ...o, nodeMemory: 128 * 2 ** 20 })).toBe(2 * 1000);
  });
});

describe('bench /proc parsing', () => {
  it('reads VmRSS in MiB', () => {
    expect(parseRssMiB('Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t  204800 kB\nVmData: 1 kB\n')).toBe(200);
    expect(parseRssMiB('Name:\tnode\nVmHWM:\t  409600 kB\nVmRSS:\t  204800 kB\n', 'VmHWM')).toBe(400);
    expect(parseRssMiB('Name:\tzombie\n')).toBeUndefined();
  });

  it('reads utime + stime, whatever the command name holds', () => {
    const stat = '4242 (node (bench) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 11 0 100 1000000 5000';
    expect(parseCpuSeconds(stat)).toBe(3);
    expect(parseCpuSeconds('garbage')).toBeUndefined();
  });
});
