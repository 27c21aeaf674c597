import type { Job } from '../../pkg/model/job.js';
import type { Queue } from '../../pkg/model/queue.js';
import type { Store } from '../../pkg/store/store.js';
import { submitJobs } from './bulk-submit.js';
import type { BulkSubmission, ClusterClient, LogFollowOptions, LogReadOptions } from './cluster-client.js';
import { followLogs, printLogs } from './follow-logs.js';
import { cancelJob, getGangReplicas, getJobStatus, jobStatusView, type CancelOutcome, type JobStatusDocument } from './jobs.js';
import { listJobs, watchJobs, type ListQuery } from './list.js';
import { listNodeUsage, readPlacementInfo, type NodeUsage, type PlacementInfo } from './nodes.js';
import { createQueue, deleteQueue, listQueueUsage, updateQueue, type QueueFlags, type QueueUsage } from './queues.js';
import type { Skipped } from './skipped.js';
import { gangSubmissionView, requireQueues, waitForJob, type GangSubmission, type SubmitPlan } from './submit.js';

/** The verbs on etcd directly: the functions the CLI has always called, unchanged. */
export class EtcdCluster implements ClusterClient {
  constructor(private readonly store: Store) {}

  async submitJob(plan: SubmitPlan): Promise<Job> {
    const job = plan.jobs[0];
    await requireQueues(this.store, [job]);
    await this.store.createJobs([job]);
    return job;
  }

  async submitGang(plan: SubmitPlan): Promise<GangSubmission> {
    await requireQueues(this.store, plan.jobs.slice(0, 1)); // replicas share one spec, so one queue
    await this.store.createJobs(plan.jobs, { atomic: true });
    return gangSubmissionView(plan);
  }

  async submitBulk(plan: SubmitPlan, onProgress?: (submitted: number, total: number) => void): Promise<BulkSubmission> {
    await requireQueues(this.store, plan.jobs.slice(0, 1)); // bulk jobs share one spec, so one queue
    const { transactions, ...result } = await submitJobs(this.store, plan.jobs, onProgress ? { onProgress } : {});
    return { ...result, batches: transactions, batchUnit: 'transactions' };
  }

  waitForJob(id: string, onChange: (job: Job) => void): Promise<Job> {
    return waitForJob(this.store, id, { onChange });
  }

  async status(id: string): Promise<JobStatusDocument> {
    const job = await getJobStatus(this.store, id);
    return jobStatusView(job, await getGangReplicas(this.store, job));
  }

  async list(query: ListQuery): Promise<{ jobs: Job[]; skipped: Skipped[] }> {
    const { jobs, skipped } = await listJobs(this.store, query);
    return { jobs, skipped: [skipped] };
  }

  watchList(query: ListQuery, onList: (jobs: Job[]) => void, signal?: AbortSignal): Promise<void> {
    return watchJobs(this.store, query, onList, signal);
  }

  cancel(id: string, graceMs: number): Promise<CancelOutcome> {
    return cancelJob(this.store, id, graceMs);
  }

  retry(id: string): Promise<Job> {
    return this.store.retryJob(id);
  }

  async nodes(): Promise<{ nodes: NodeUsage[]; placement: PlacementInfo; skipped: Skipped[] }> {
    const [{ nodes, skipped }, placement] = await Promise.all([listNodeUsage(this.store), readPlacementInfo(this.store)]);
    return { nodes, placement, skipped };
  }

  queues(): Promise<QueueUsage[]> {
    return listQueueUsage(this.store);
  }

  createQueue(name: string, flags: QueueFlags): Promise<Queue> {
    return createQueue(this.store, name, flags);
  }

  updateQueue(name: string, flags: QueueFlags): Promise<Queue> {
    return updateQueue(this.store, name, flags);
  }

  deleteQueue(name: string): Promise<void> {
    return deleteQueue(this.store, name);
  }

  async logs(id: string, options: LogReadOptions): Promise<void> {
    await printLogs(this.store, id, options);
  }

  async followLogs(id: string, options: LogFollowOptions): Promise<void> {
    await followLogs(this.store, id, options);
  }
}
