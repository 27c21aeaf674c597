/** What npm run bench:e2e reports: per kind of job, Titan (and any peer scheduler) beside the raw reference of the same run. */

export type Kind = 'shell' | 'docker';

/** Another scheduler run on the same workload in the same run (`--peer`). */
export type Peer = 'slurm';

/** A peer's figures for one kind, over the same rounds as Titan's. */
export interface PeerResult {
  peer: Peer;
  jobsPerSec: number;
  /** jobsPerSec ÷ the kind's rawJobsPerSec. */
  ratio: number;
  /** Submit to the job's start, ms; absent when the peer cannot tell. */
  startP50Ms?: number;
  startP99Ms?: number;
  /** CPU milliseconds per job of the peer's daemons. */
  cpuMsPerJob: { slurmctld?: number; slurmd?: number };
  failures: number;
}

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
  /** Titan's processes' RSS after each round (JSON only): flat when nothing is kept of ended jobs. */
  rssMiBAfterRounds?: { master?: number; worker?: number; launcher?: number }[];
  /** The master's and the worker's live heap after each round, after a full collection (JSON only): what RSS cannot tell apart from the collector's timing. */
  liveHeapMiBAfterRounds?: { master?: number; worker?: number }[];
  peers?: PeerResult[];
}

/** With --retain-jobs: etcd's database at the start, after the rounds and once retention and compaction are through. */
export interface EtcdSizeResult {
  retainJobs: number;
  jobsLeft: number;
  /** What etcd holds (dbSizeInUse). */
  inUseMiB: { atStart: number; afterRounds: number; afterRetention: number };
  /** The file (dbSize): it keeps its high-water mark until a defragmentation. */
  fileMiB: { atStart: number; afterRounds: number; afterRetention: number };
  retentionSeconds: number;
}

export function formatEtcdSize(e: EtcdSizeResult): string {
  return (
    `etcd in use: ${e.inUseMiB.atStart} MiB at start, ${e.inUseMiB.afterRounds} after the rounds, ${e.inUseMiB.afterRetention} once retention (${e.retainJobs} jobs kept, ${e.jobsLeft} left) and compaction were through (${e.retentionSeconds} s); ` +
    `file ${e.fileMiB.atStart}, ${e.fileMiB.afterRounds}, ${e.fileMiB.afterRetention} MiB`
  );
}

/**
 * A text table, one row per kind and system: Titan's, then each peer's
 * (its jobs/s and ratio to the same raw reference); the peers' CPU columns
 * only when some kind has a peer.
 */
export function formatResults(results: readonly KindResult[]): string {
  const withPeers = results.some((r) => (r.peers?.length ?? 0) > 0);
  const head = ['kind', 'system', 'jobs x rounds', 'raw jobs/s', 'jobs/s', 'ratio', 'start P50 / P99 ms', 'CPU ms/job master', 'worker', 'launcher', 'etcd', 'raw spawner', ...(withPeers ? ['slurmctld', 'slurmd'] : [])];
  const cell = (v: number | undefined): string => (v === undefined ? '-' : String(v));
  const rows = results.flatMap((r) => {
    const titan = [
      r.kind,
      'titan',
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
      ...(withPeers ? ['-', '-'] : []),
    ];
    const peers = (r.peers ?? []).map((p) => [
      r.kind,
      p.peer,
      `${r.jobs} x ${r.rounds}`,
      cell(r.rawJobsPerSec),
      cell(p.jobsPerSec),
      cell(p.ratio),
      `${cell(p.startP50Ms)} / ${cell(p.startP99Ms)}`,
      '-',
      '-',
      '-',
      '-',
      '-',
      cell(p.cpuMsPerJob.slurmctld),
      cell(p.cpuMsPerJob.slurmd),
    ]);
    return [titan, ...peers];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  return [head, ...rows].map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}
