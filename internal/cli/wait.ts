import type { Job } from '../../pkg/model/job.js';
import type { ClusterClient } from './cluster-client.js';
import { jobExitCode } from './submit.js';

/**
 * `titan wait`'s exit status: 0 when every job succeeded, else that of the
 * first job (in the order named) that did not, as `titan submit --wait`
 * gives it (jobExitCode: the job's own exit code, or 1).
 */
export function waitExitCode(jobs: readonly Job[]): number {
  const first = jobs.find((j) => j.state !== 'Succeeded');
  return first ? jobExitCode(first) : 0;
}

export interface WaitForJobsOptions {
  /** Each job once it ended, in the order named. */
  onEnd?: (job: Job) => void;
  /** Every state a job is seen in while it is waited for. */
  onChange?: (job: Job) => void;
}

/**
 * Waits until every named job ended; answers their final states in the
 * order named (each id once). Every id is looked up first, so an unknown
 * one fails (NotFound) before any waiting. The jobs are waited for one
 * after the other, each as `submit --wait` waits for its job: the total is
 * the wait for the last to end, with one follow at a time.
 */
export async function waitForJobs(cluster: ClusterClient, ids: readonly string[], options: WaitForJobsOptions = {}): Promise<Job[]> {
  const unique = [...new Set(ids)];
  for (const id of unique) await cluster.status(id);
  const ended: Job[] = [];
  for (const id of unique) {
    const job = await cluster.waitForJob(id, (j) => options.onChange?.(j));
    ended.push(job);
    options.onEnd?.(job);
  }
  return ended;
}
