import fs from 'node:fs';
import path from 'node:path';
import { cpuSeconds } from '../bench/proc-stats.js';
import { sleep } from '../bench/wait.js';
import { difference } from '../bench-docker/throughput.js';
import type { SlurmCluster } from './slurm-cluster.js';

/**
 * One round of the Slurm peer: the same N trivial jobs (`true`, 1 CPU each)
 * as one `sbatch --array`, from the submit to the moment squeue lists no task
 * of the array. Start latency is the submit to the creation of each task's
 * output file, which slurmstepd opens just before it executes the job (no
 * accounting daemon needed); CPU is that of slurmctld and slurmd from /proc
 * (the per-job slurmstepd processes are not counted; the round waits for
 * them to end after its clock stops).
 */

export interface SlurmRound {
  count: number;
  succeeded: number;
  seconds: number;
  /** Each task's submit → start, ms. */
  startsMs: number[];
  /** CPU seconds over the round. */
  cpu: { slurmctld?: number; slurmd?: number };
  error?: string;
}

/** The sbatch arguments for `jobs` tasks of `true`, each task's (empty) output in outDir/<index>. */
export function sbatchArgs(jobs: number, outDir: string, memoryMiB: number): string[] {
  return ['--parsable', `--array=0-${jobs - 1}`, '--cpus-per-task=1', `--mem=${memoryMiB}M`, '--job-name=titan-bench', '-o', path.join(outDir, '%a'), '-e', '/dev/null', '--wrap', 'true'];
}

/** The job id of `sbatch --parsable` ("123" or "123;cluster"). */
export function parseJobId(stdout: string): string | undefined {
  const id = stdout.trim().split(';')[0];
  return /^\d+$/.test(id) ? id : undefined;
}

const POLL_MS = 150;

export async function runSlurmRound(cluster: SlurmCluster, options: { jobs: number; round: number; memoryMiB: number }, progress: (msg: string) => void): Promise<SlurmRound> {
  const outDir = path.join(cluster.dir, `round-${options.round}`);
  fs.mkdirSync(outDir, { recursive: true });
  const cpuBefore = { slurmctld: cpuSeconds(cluster.pid('slurmctld')), slurmd: cpuSeconds(cluster.pid('slurmd')) };
  const submittedAt = Date.now();
  const started = performance.now();
  const base = { count: options.jobs, succeeded: 0, startsMs: [], cpu: {} };
  const sbatch = await cluster.run('sbatch', sbatchArgs(options.jobs, outDir, options.memoryMiB));
  const id = parseJobId(sbatch.stdout);
  if (sbatch.code !== 0 || id === undefined) return { ...base, seconds: 0, error: `sbatch failed (exit ${sbatch.code}): ${sbatch.stderr.trim() || sbatch.stdout.trim()}` };

  const deadline = started + 60_000 + options.jobs * 500;
  let lastProgress = started;
  let error: string | undefined;
  for (;;) {
    const dead = cluster.failure();
    if (dead) {
      error = dead;
      break;
    }
    // Default states: pending, running, completing. Once the tasks are gone squeue prints nothing (or, if purged, refuses the id).
    const q = await cluster.run('squeue', ['-h', '-j', id, '-o', '%i']);
    if (q.code === 0 ? q.stdout.trim() === '' : /invalid job id/i.test(q.stderr)) break;
    const now = performance.now();
    if (now > deadline) {
      error = `tasks of job ${id} still queued after ${Math.round((now - started) / 1000)} s`;
      break;
    }
    if (now - lastProgress >= 2000) {
      lastProgress = now;
      // -r: one line per task (a pending array is otherwise one line).
      const left = await cluster.run('squeue', ['-h', '-r', '-j', id, '-o', '%i']);
      progress(`slurm: ${left.stdout.split('\n').filter(Boolean).length}/${options.jobs} tasks queued or running`);
    }
    await sleep(POLL_MS);
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu = { slurmctld: difference(cpuSeconds(cluster.pid('slurmctld')), cpuBefore.slurmctld), slurmd: difference(cpuSeconds(cluster.pid('slurmd')), cpuBefore.slurmd) };

  // Ended tasks stay listed with --states=all for MinJobAge (300 s).
  const states = await cluster.run('squeue', ['-h', '-t', 'all', '-j', id, '-o', '%T']);
  const succeeded = states.stdout.split('\n').filter((s) => s.trim() === 'COMPLETED').length;
  // The job steps outlive their tasks by a second or so: let them end before the next phase (not counted in seconds).
  if (!(await cluster.settle())) progress('slurm: job steps still running 10 s after the last task ended');
  const startsMs = fs.readdirSync(outDir).map((f) => fs.statSync(path.join(outDir, f)).mtimeMs - submittedAt);
  return { count: options.jobs, succeeded, seconds, startsMs, cpu, ...(error ? { error } : {}) };
}
