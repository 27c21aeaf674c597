import { describe, expect, it } from 'vitest';
import { formatResults } from '../../scripts/bench-e2e/report.js';

describe('npm run bench:e2e report', () => {
  it('prints one row per kind, missing figures as -', () => {
    const text = formatResults([
      { kind: 'shell', jobs: 1000, rounds: 2, rawJobsPerSec: 372, titanJobsPerSec: 118, ratio: 0.318, startP50Ms: 4481, startP99Ms: 9861, cpuMsPerJob: { master: 3.5, worker: 5.79, launcher: 1.2, etcd: 2.02, rawSpawner: 1.49 }, failures: 0 },
      { kind: 'docker', jobs: 100, rounds: 1, rawJobsPerSec: 20, titanJobsPerSec: 18, ratio: 0.9, cpuMsPerJob: { master: 4 }, failures: 0 },
    ]);
    const [head, shell, docker] = text.split('\n').map((l) => l.split(/ {2,}/));
    expect(head).toEqual(['kind', 'jobs x rounds', 'raw jobs/s', 'titan jobs/s', 'ratio', 'start P50 / P99 ms', 'CPU ms/job master', 'worker', 'launcher', 'etcd', 'raw spawner']);
    expect(shell).toEqual(['shell', '1000 x 2', '372', '118', '0.318', '4481 / 9861', '3.5', '5.79', '1.2', '2.02', '1.49']);
    expect(docker).toEqual(['docker', '100 x 1', '20', '18', '0.9', '- / -', '4', '-', '-', '-', '-']);
  });
});
