import { TitanError, isTitanError } from '../../pkg/model/errors.js';
import type { Job } from '../../pkg/model/job.js';
import type { LogEntry } from '../../pkg/model/logs.js';
import type { Queue } from '../../pkg/model/queue.js';
import type { ArrayCancelOutcome, ArrayRetryOutcome, ArrayStatusDocument } from './arrays.js';
import { withStore, type CliConfig } from './context.js';
import type { CancelOutcome, JobStatusDocument } from './jobs.js';
import type { ListQuery } from './list.js';
import type { NodeUsage, PlacementInfo } from './nodes.js';
import type { QueueFlags, QueueUsage } from './queues.js';
import type { Skipped } from './skipped.js';
import type { ArraySubmission, GangSubmission, SubmitPlan } from './submit.js';

/** What `submit -n` reports, however the jobs went in. */
export interface BulkSubmission {
  submitted: number;
  seconds: number;
  jobsPerSec: number;
  ids: string[];
  /** Writes it took: etcd transactions, or API requests. */
  batches: number;
  batchUnit: 'transactions' | 'requests';
}

export interface LogReadOptions {
  /** One attempt (1-based); default: the latest. */
  attempt?: number;
  /** Every entry, in order. */
  write: (entry: LogEntry) => void;
}

export interface LogFollowOptions extends LogReadOptions {
  /** Titan's own remarks while following (waiting for the job to start, a new attempt). */
  notice?: (message: string) => void;
}

/**
 * What the CLI's verbs ask of a cluster. Two ways in: etcd directly
 * (EtcdCluster, the functions the verbs always used) or a master's HTTP API
 * (ApiCluster); each answers with the same values, so a verb prints the same
 * table or JSON either way and fails with the same error.
 */
export interface ClusterClient {
  /** One job (`plan.jobs[0]`); answers it as created. */
  submitJob(plan: SubmitPlan): Promise<Job>;
  /** A gang (`--replicas`), all replicas or none. */
  submitGang(plan: SubmitPlan): Promise<GangSubmission>;
  /** An array (`--array`): its tasks in batches (submitJobs). */
  submitArray(plan: SubmitPlan): Promise<ArraySubmission>;
  /** `-n`: many jobs of one spec, in batches; `onProgress` after each batch. */
  submitBulk(plan: SubmitPlan, onProgress?: (submitted: number, total: number) => void): Promise<BulkSubmission>;
  /** Until the job ends: its final state. `onChange` sees every state it is seen in. */
  waitForJob(id: string, onChange: (job: Job) => void): Promise<Job>;
  /** `id`: a job, `ID[7]` an array task, or an array id (its counts per state). */
  status(id: string): Promise<JobStatusDocument | ArrayStatusDocument>;
  /** The query's jobs in its order (newest first by default); `skipped`: corrupt records left out (etcd only). */
  list(query: ListQuery): Promise<{ jobs: Job[]; skipped: Skipped[] }>;
  /** `list --watch`: the query's jobs, again after each change to the jobs, until `signal` aborts. */
  watchList(query: ListQuery, onList: (jobs: Job[]) => void, signal?: AbortSignal): Promise<void>;
  /** An array id cancels every task of it that has not ended. */
  cancel(id: string, graceMs: number): Promise<CancelOutcome | ArrayCancelOutcome>;
  /** `failed`: an array id's Failed tasks (and only with an array id). */
  retry(id: string, options?: { failed?: boolean }): Promise<Job | ArrayRetryOutcome>;
  nodes(): Promise<{ nodes: NodeUsage[]; placement: PlacementInfo; skipped: Skipped[] }>;
  queues(): Promise<QueueUsage[]>;
  createQueue(name: string, flags: QueueFlags): Promise<Queue>;
  updateQueue(name: string, flags: QueueFlags): Promise<Queue>;
  deleteQueue(name: string): Promise<void>;
  /** One attempt's output as it is now. */
  logs(id: string, options: LogReadOptions): Promise<void>;
  /** The output as it comes, until the job ends (or the pinned attempt is over). */
  followLogs(id: string, options: LogFollowOptions): Promise<void>;
}

/**
 * Runs one verb against the cluster: through the API when an address is
 * configured (--addr, TITAN_ADDR or the context; etcd is then never
 * contacted, nor its client loaded), else through etcd. Connections are closed after.
 */
export async function withCluster<T>(config: CliConfig, run: (cluster: ClusterClient) => Promise<T>): Promise<T> {
  if (config.api) {
    const [{ ApiClient }, { ApiCluster }] = await Promise.all([import('./api-client.js'), import('./api-cluster.js')]);
    const client = new ApiClient(config.api);
    try {
      return await run(new ApiCluster(client));
    } finally {
      client.close();
    }
  }
  const { EtcdCluster } = await import('./etcd-cluster.js');
  return withStore(config, (store) => run(new EtcdCluster(store)));
}

/**
 * Verbs that work on etcd itself (token, doctor, migrate, auth) always use
 * the etcd connection, API address or not; when one is set and etcd cannot
 * be reached, the error says that these verbs need etcd.
 */
export async function etcdOnly<T>(config: CliConfig, verb: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (config.api === undefined || !isTitanError(err, 'Unavailable')) throw err;
    throw new TitanError(
      'Unavailable',
      `titan ${verb} works on etcd directly, not through the API (${config.api.addr}); give it etcd access (--endpoints, TITAN_ENDPOINTS or a context with endpoints): ${err.message}`,
      { cause: err },
    );
  }
}
