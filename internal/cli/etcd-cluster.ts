import type { Job } from '../../pkg/model/job.js';
import type { Queue } from '../../pkg/model/queue.js';
import type { Store } from '../../pkg/store/store.js';
import { parseJobRef } from '../../pkg/model/array.js';
import { arrayStatusView, cancelArrayTasks, resolveJobRef, retryFailedTasks, retryUsage, withSingleJob, type ArrayCancelOutcome, type ArrayRetryOutcome, type ArrayStatusDocument } from './arrays.js';
import { submitJobs } from './bulk-submit.js';
import type { BulkSubmission, ClusterClient, LogFollowOptions, LogReadOptions } from './cluster-client.js';
import { followLogs, printLogs } from './follow-logs.js';
import { cancelJob, getGangReplicas, jobStatusView, type CancelOutcome, type JobStatusDocument } from './jobs.js';
import { listJobs, watchJobs, type ListQuery } from './list.js';
import { listNodeUsage, readPlacementInfo, type NodeUsage, type PlacementInfo } from './nodes.js';
import { createQueue, deleteQueue, listQueueUsage, updateQueue, type QueueFlags, type QueueUsage } from './queues.js';
import type { Skipped } from './skipped.js';
import { arraySubmissionView, gangSubmissionView, requireQueues, waitForJob, type ArraySubmission, type GangSubmission, type SubmitPlan } from './submit.js';

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

  async submitArray(plan: SubmitPlan): Promise<ArraySubmission> {
    await requireQueues(this.store, plan.jobs.slice(0, 1)); // tasks share one spec, so one queue
    await submitJobs(this.store, plan.jobs);
    return arraySubmissionView(plan);
  }

  async submitBulk(plan: SubmitPlan, onProgress?: (submitted: number, total: number) => void): Promise<BulkSubmission> {
    await requireQueues(this.store, plan.jobs.slice(0, 1)); // bulk jobs share one spec, so one queue
    const { transactions, ...result } = await submitJobs(this.store, plan.jobs, onProgress ? { onProgress } : {});
    return { ...result, batches: transactions, batchUnit: 'transactions' };
  }

  waitForJob(id: string, onChange: (job: Job) => void): Promise<Job> {
    return waitForJob(this.store, parseJobRef(id).id, { onChange });
  }

  async status(id: string): Promise<JobStatusDocument | ArrayStatusDocument> {
    const resolved = await resolveJobRef(this.store, id);
    if (resolved.kind === 'array') return arrayStatusView(resolved.id, resolved.tasks.map((t) => t.value));
    const job = resolved.job.value;
    return jobStatusView(job, await getGangReplicas(this.store, job));
  }

  async list(query: ListQuery): Promise<{ jobs: Job[]; skipped: Skipped[] }> {
    const { jobs, skipped } = await listJobs(this.store, query);
    return { jobs, skipped: [skipped] };
  }

  watchList(query: ListQuery, onList: (jobs: Job[]) => void, signal?: AbortSignal): Promise<void> {
    return watchJobs(this.store, query, onList, signal);
  }

  async cancel(id: string, graceMs: number): Promise<CancelOutcome | ArrayCancelOutcome> {
    const resolved = await resolveJobRef(this.store, id);
    if (resolved.kind === 'array') return cancelArrayTasks(this.store, resolved.id, resolved.tasks, graceMs);
    return cancelJob(this.store, resolved.job.value.id, graceMs);
  }

  async retry(id: string, options: { failed?: boolean } = {}): Promise<Job | ArrayRetryOutcome> {
    const resolved = await resolveJobRef(this.store, id);
    const usage = retryUsage(resolved, options.failed === true);
    if (usage) throw usage;
    if (resolved.kind === 'array') return retryFailedTasks(this.store, resolved.id, resolved.tasks);
    return this.store.retryJob(resolved.job.value.id);
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
    await withSingleJob(this.store, id, 'logs', (jobId) => printLogs(this.store, jobId, options));
  }

  async followLogs(id: string, options: LogFollowOptions): Promise<void> {
    await withSingleJob(this.store, id, 'logs', (jobId) => followLogs(this.store, jobId, options));
  }
}
