/** What npm run bench:e2e reports: per kind of job, Titan beside the raw reference of the same run. */

export type Kind = 'shell' | 'docker';

/** One kind's figures: Titan over its rounds, and the raw reference over the same rounds. */
export interface KindResult {
  kind: Kind;
  jobs: number;
  rounds: number;
  rawJobsPerSec: number;
  titanJobsPerSec: number;
  /** titanJobsPerSec ÷ rawJobsPerSec. */
  ratio: number;
  /** Submit (the job's createdAt) to the process's start (its startedAt), ms. */
  startP50Ms?: number;
  startP99Ms?: number;
  /** CPU milliseconds per job: Titan's processes (the worker's process launcher apart), and (shell) the raw spawner's own. */
  cpuMsPerJob: { master?: number; worker?: number; launcher?: number; etcd?: number; rawSpawner?: number };
  failures: number;
}

export function formatResults(results: readonly KindResult[]): string {
  const head = ['kind', 'jobs x rounds', 'raw jobs/s', 'titan jobs/s', 'ratio', 'start P50 / P99 ms', 'CPU ms/job master', 'worker', 'launcher', 'etcd', 'raw spawner'];
  const cell = (v: number | undefined): string => (v === undefined ? '-' : String(v));
  const rows = results.map((r) => [
    r.kind,
    `${r.jobs} x ${r.rounds}`,
    cell(r.rawJobsPerSec),
    cell(r.titanJobsPerSec),
    cell(r.ratio),
    `${cell(r.startP50Ms)} / ${cell(r.startP99Ms)}`,
    cell(r.cpuMsPerJob.master),
    cell(r.cpuMsPerJob.worker),
    cell(r.cpuMsPerJob.launcher),
    cell(r.cpuMsPerJob.etcd),
    cell(r.cpuMsPerJob.rawSpawner),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  return [head, ...rows].map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}
