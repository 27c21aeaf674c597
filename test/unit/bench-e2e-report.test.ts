import { describe, expect, it } from 'vitest';
import { formatResults, type KindResult } from '../../scripts/bench-e2e/report.js';

const shell: KindResult = { kind: 'shell', jobs: 1000, rounds: 2, rawJobsPerSec: 372, titanJobsPerSec: 118, ratio: 0.318, startP50Ms: 4481, startP99Ms: 9861, cpuMsPerJob: { master: 3.5, worker: 5.79, launcher: 1.2, etcd: 2.02, rawSpawner: 1.49 }, failures: 0 };
const docker: KindResult = { kind: 'docker', jobs: 100, rounds: 1, rawJobsPerSec: 20, titanJobsPerSec: 18, ratio: 0.9, cpuMsPerJob: { master: 4 }, failures: 0 };
const cells = (text: string): string[][] => text.split('\n').map((l) => l.split(/ {2,}/));

describe('npm run bench:e2e report', () => {
  it('prints one row per kind, missing figures as -', () => {
    const [head, shellRow, dockerRow, ...rest] = cells(formatResults([shell, docker]));
    expect(head).toEqual(['kind', 'system', 'jobs x rounds', 'raw jobs/s', 'jobs/s', 'ratio', 'start P50 / P99 ms', 'CPU ms/job master', 'worker', 'launcher', 'etcd', 'raw spawner']);
    expect(shellRow).toEqual(['shell', 'titan', '1000 x 2', '372', '118', '0.318', '4481 / 9861', '3.5', '5.79', '1.2', '2.02', '1.49']);
    expect(dockerRow).toEqual(['docker', 'titan', '100 x 1', '20', '18', '0.9', '- / -', '4', '-', '-', '-', '-']);
    expect(rest).toEqual([]);
  });

  it('adds a row per peer under its kind, beside the same raw reference, with the peer daemons\' CPU columns', () => {
    const slurm = { peer: 'slurm' as const, jobsPerSec: 36.2, ratio: 0.097, startP50Ms: 3900, startP99Ms: 7950, cpuMsPerJob: { slurmctld: 2.1, slurmd: 4.4 }, failures: 0 };
    const [head, shellRow, slurmRow, dockerRow] = cells(formatResults([{ ...shell, peers: [slurm] }, docker]));
    expect(head.slice(-3)).toEqual(['raw spawner', 'slurmctld', 'slurmd']);
    expect(shellRow).toEqual(['shell', 'titan', '1000 x 2', '372', '118', '0.318', '4481 / 9861', '3.5', '5.79', '1.2', '2.02', '1.49', '-', '-']);
    expect(slurmRow).toEqual(['shell', 'slurm', '1000 x 2', '372', '36.2', '0.097', '3900 / 7950', '-', '-', '-', '-', '-', '2.1', '4.4']);
    expect(dockerRow).toEqual(['docker', 'titan', '100 x 1', '20', '18', '0.9', '- / -', '4', '-', '-', '-', '-', '-', '-']);
  });

  it('prints - for a peer without start latency', () => {
    const slurm = { peer: 'slurm' as const, jobsPerSec: 30, ratio: 0.08, cpuMsPerJob: {}, failures: 0 };
    const [, , slurmRow] = cells(formatResults([{ ...shell, peers: [slurm] }]));
    expect(slurmRow.slice(4, 7)).toEqual(['30', '0.08', '- / -']);
    expect(slurmRow.slice(-2)).toEqual(['-', '-']);
  });
});
