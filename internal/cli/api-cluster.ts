import { parseJobRef } from '../../pkg/model/array.js';
import { TitanError } from '../../pkg/model/errors.js';
import { isFinal, type Job } from '../../pkg/model/job.js';
import type { LogEntry } from '../../pkg/model/logs.js';
import type { Queue } from '../../pkg/model/queue.js';
import { MAX_BODY_BYTES, MAX_JOBS_PER_POST, MAX_LIST_LIMIT, ROUTE_JOB_ID } from '../api/jobs.js';
import { isArrayCancel, type ArrayCancelOutcome, type ArrayRetryOutcome, type ArrayStatusDocument } from './arrays.js';
import type { NodeView } from '../api/nodes.js';
import { errorOfBody, type ApiClient, type ServerEvent } from './api-client.js';
import { submitInBatches } from './bulk-submit.js';
import type { BulkSubmission, ClusterClient, LogFollowOptions, LogReadOptions } from './cluster-client.js';
import { jobQueryParams } from '../../pkg/model/job-query.js';
import { jobOfStatusView, type CancelOutcome, type JobStatusDocument } from './jobs.js';
import type { ListQuery } from './list.js';
import type { NodeUsage, PlacementInfo } from './nodes.js';
import type { QueueFlags, QueueUsage } from './queues.js';
import type { Skipped } from './skipped.js';
import type { ArraySubmission, GangSubmission, SubmitPlan } from './submit.js';

/** `submit -n` requests in flight at once. */
export const API_SUBMIT_CONCURRENCY = 4;
/** How long a blocking read of a job or of the list waits for a change (under API_CALL_TIMEOUT_MS, so the call is not cut). */
const WAIT_PER_READ = '20s';
/** A job just created may take a moment to reach the answering master's cache: until then it reads as absent. */
const NEW_JOB_GRACE_MS = 10_000;
/** Connection failures in a row (no progress between) a wait or a log follow rides out before it gives up. */
const MAX_FAILURES = 3;

/** The ids the API's routes take: anything else cannot name a job, so it is absent, as etcd would say. */
const ROUTE_JOB_ID_PATTERN = new RegExp(ROUTE_JOB_ID);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A job's route; `ID[7]` (an array task) goes encoded, and the API parses it as the CLI does (parseJobRef). */
function jobPath(id: string, action = ''): string {
  parseJobRef(id); // a malformed ID[i] is bad input here as through etcd
  if (!ROUTE_JOB_ID_PATTERN.test(id)) throw new TitanError('NotFound', `no job ${id} (see titan list)`);
  return `/v1/jobs/${encodeURIComponent(id)}${action}`;
}

/** A failure a reader rides out by reading again: the master went away for a moment, or the reader fell behind. */
function resumable(err: unknown): boolean {
  return err instanceof TitanError && (err.code === 'Unavailable' || err.code === 'ResourceExhausted');
}

/** `GET /v1/nodes` element → the node and cluster facts `titan nodes` prints. */
function nodeUsageOf(view: NodeView): NodeUsage {
  const usage: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(view)) if (key !== 'policy' && key !== 'gpuShares' && key !== 'leader') usage[key] = value;
  return usage as unknown as NodeUsage;
}

/**
 * The verbs through a master's HTTP API. The API validates with the same
 * functions the CLI calls on etcd and answers the same documents, so what is
 * printed and the errors (code and message) are the same either way.
 */
export class ApiCluster implements ClusterClient {
  constructor(private readonly api: ApiClient) {}

  submitJob(plan: SubmitPlan): Promise<Job> {
    return this.api.call<Job>('POST', '/v1/jobs', plan.input);
  }

  submitGang(plan: SubmitPlan): Promise<GangSubmission> {
    return this.api.call<GangSubmission>('POST', '/v1/jobs', plan.input);
  }

  /** One document: the API makes the tasks and writes them in batches. */
  submitArray(plan: SubmitPlan): Promise<ArraySubmission> {
    return this.api.call<ArraySubmission>('POST', '/v1/jobs', plan.input);
  }

  /** Arrays of documents, each request under the API's count and body limits. */
  async submitBulk(plan: SubmitPlan, onProgress?: (submitted: number, total: number) => void): Promise<BulkSubmission> {
    const documents = plan.jobs.map((job) => ({ ...plan.input, name: job.name }));
    // The documents differ only in their names: the one with the longest name is the largest.
    const longestName = plan.jobs.reduce((longest, job) => (job.name.length > longest.length ? job.name : longest), '');
    const largest = Buffer.byteLength(JSON.stringify({ ...plan.input, name: longestName })) + 1;
    const batchSize = Math.max(1, Math.min(MAX_JOBS_PER_POST, Math.floor(MAX_BODY_BYTES / 2 / largest)));
    const result = await submitInBatches(
      documents,
      async (batch) => (await this.api.call<{ jobs: Job[] }>('POST', '/v1/jobs', batch)).jobs.map((j) => j.id),
      { batchSize, concurrency: API_SUBMIT_CONCURRENCY, ...(onProgress ? { onProgress } : {}) },
    );
    return { ...result, batchUnit: 'requests' };
  }

  /** Blocking reads of the job (`?index=&wait=`) until it ends. */
  async waitForJob(id: string, onChange: (job: Job) => void): Promise<Job> {
    const graceUntil = Date.now() + NEW_JOB_GRACE_MS;
    let index: string | undefined;
    let seen = false;
    let lastState: string | undefined;
    let failures = 0;
    for (;;) {
      let view: JobStatusDocument;
      try {
        const answer = await this.api.callIndexed<JobStatusDocument>('GET', `${jobPath(id)}${index !== undefined ? `?index=${index}&wait=${WAIT_PER_READ}` : ''}`);
        view = answer.body;
        if (answer.index === undefined) await sleep(1000); // not a blocking read: do not spin
        index = answer.index;
        failures = 0;
      } catch (err) {
        if (err instanceof TitanError && err.code === 'NotFound') {
          if (seen) throw new TitanError('NotFound', `job ${id} was deleted while waiting for it`);
          if (Date.now() < graceUntil) {
            await sleep(100);
            continue;
          }
        }
        if (resumable(err) && ++failures < MAX_FAILURES) {
          await sleep(1000 * failures);
          continue;
        }
        throw err;
      }
      seen = true;
      const job = jobOfStatusView(view);
      if (job.state !== lastState) {
        lastState = job.state;
        onChange(job);
      }
      if (isFinal(job.state)) return job;
    }
  }

  status(id: string): Promise<JobStatusDocument | ArrayStatusDocument> {
    return this.api.call<JobStatusDocument | ArrayStatusDocument>('GET', jobPath(id));
  }

  /** Page after page (in the query's order) until the limit, or the end. */
  async list(query: ListQuery): Promise<{ jobs: Job[]; skipped: Skipped[] }> {
    const { jobs } = await this.readList(query);
    return { jobs: jobs ?? [], skipped: [] };
  }

  /** Blocking reads of the list (`?index=&wait=`), as `submit --wait` follows a job: each answer newer than the last is a list. */
  async watchList(query: ListQuery, onList: (jobs: Job[]) => void, signal?: AbortSignal): Promise<void> {
    let index: string | undefined;
    let failures = 0;
    while (!signal?.aborted) {
      try {
        const read = await this.readList(query, index);
        failures = 0;
        if (read.index === undefined) await sleep(1000); // not a blocking read: do not spin
        index = read.index;
        if (read.jobs && !signal?.aborted) onList(read.jobs);
      } catch (err) {
        if (resumable(err) && ++failures < MAX_FAILURES) {
          await sleep(1000 * failures);
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * Every page of the list. With `after` (an index seen), the first page is a
   * blocking read; when it comes back at that same index (the wait ran out,
   * nothing changed), `jobs` is undefined and no further page is read.
   */
  private async readList(query: ListQuery, after?: string): Promise<{ jobs: Job[] | undefined; index: string | undefined }> {
    const jobs: Job[] = [];
    let cursor: string | undefined;
    let index: string | undefined;
    do {
      const params = jobQueryParams(query);
      params.set('limit', String(Math.min(MAX_LIST_LIMIT, (query.limit ?? Infinity) - jobs.length)));
      if (cursor !== undefined) params.set('cursor', cursor);
      else if (after !== undefined) {
        params.set('index', after);
        params.set('wait', WAIT_PER_READ);
      }
      const page = await this.api.callIndexed<{ jobs: Job[]; nextCursor: string | null }>('GET', `/v1/jobs?${params}`);
      if (cursor === undefined) {
        index = page.index;
        if (after !== undefined && index === after) return { jobs: undefined, index };
      }
      jobs.push(...page.body.jobs);
      cursor = page.body.nextCursor ?? undefined;
    } while (cursor !== undefined && (query.limit === undefined || jobs.length < query.limit));
    return { jobs, index };
  }

  async cancel(id: string, graceMs: number): Promise<CancelOutcome | ArrayCancelOutcome> {
    const answer = await this.api.call<Job | ArrayCancelOutcome>('POST', jobPath(id, `/cancel?grace=${graceMs}ms`));
    if (isArrayCancel(answer)) return answer;
    return { job: answer, immediate: answer.state === 'Cancelled', graceMs };
  }

  retry(id: string, options: { failed?: boolean } = {}): Promise<Job | ArrayRetryOutcome> {
    return this.api.call<Job | ArrayRetryOutcome>('POST', jobPath(id, options.failed ? '/retry?failed=1' : '/retry'));
  }

  /** The placement facts ride on every node; with no node, they are unknown. */
  async nodes(): Promise<{ nodes: NodeUsage[]; placement: PlacementInfo; skipped: Skipped[] }> {
    const views = await this.api.call<NodeView[]>('GET', '/v1/nodes');
    const first = views[0];
    const placement: PlacementInfo = {
      ...(first?.leader != null ? { leader: first.leader } : {}),
      ...(first?.policy != null ? { policy: first.policy } : {}),
    };
    return { nodes: views.map(nodeUsageOf), placement, skipped: [] };
  }

  queues(): Promise<QueueUsage[]> {
    return this.api.call<QueueUsage[]>('GET', '/v1/queues');
  }

  createQueue(name: string, flags: QueueFlags): Promise<Queue> {
    return this.api.call<Queue>('POST', '/v1/queues', { name, ...flags });
  }

  updateQueue(name: string, flags: QueueFlags): Promise<Queue> {
    return this.api.call<Queue>('PATCH', `/v1/queues/${encodeURIComponent(name)}`, flags);
  }

  async deleteQueue(name: string): Promise<void> {
    await this.api.call<unknown>('DELETE', `/v1/queues/${encodeURIComponent(name)}`);
  }

  logs(id: string, options: LogReadOptions): Promise<void> {
    return this.readLogs(id, options, false);
  }

  followLogs(id: string, options: LogFollowOptions): Promise<void> {
    return this.readLogs(id, options, true);
  }

  /**
   * The log route as an event stream: `log` events carry the entries, `end`
   * closes the answer. A follow cut short (the master restarted, the reader
   * fell behind) resumes after its last event (Last-Event-ID): no line is
   * lost or printed twice.
   */
  private async readLogs(id: string, options: LogFollowOptions, follow: boolean): Promise<void> {
    const params = new URLSearchParams();
    if (options.attempt !== undefined) params.set('attempt', String(options.attempt));
    if (follow) params.set('follow', '1');
    const query = params.toString();
    const path = `${jobPath(id, '/logs')}${query !== '' ? `?${query}` : ''}`;
    let lastEventId: string | undefined;
    let ended = false;
    let failures = 0;
    const onEvent = (e: ServerEvent): void => {
      if (e.event === 'log') {
        for (const entry of (JSON.parse(e.data) as { entries: LogEntry[] }).entries) options.write(entry);
        if (e.id !== undefined) lastEventId = e.id;
        failures = 0;
      } else if (e.event === 'notice') {
        options.notice?.((JSON.parse(e.data) as { message: string }).message);
      } else if (e.event === 'end') {
        ended = true;
      } else if (e.event === 'error') {
        throw errorOfBody(JSON.parse(e.data)) ?? new TitanError('Internal', `the API ended the log stream with: ${e.data}`);
      }
    };
    for (;;) {
      let cut: unknown;
      try {
        await this.api.events(path, onEvent, lastEventId);
      } catch (err) {
        if (!follow || !resumable(err)) throw err;
        cut = err;
      }
      if (ended) return;
      cut ??= new TitanError('Unavailable', `the API ended the log stream of job ${id} early`);
      if (!follow || ++failures >= MAX_FAILURES) throw cut;
      await sleep(1000 * failures);
    }
  }
}
