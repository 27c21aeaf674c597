import { jobRefOf } from '../../pkg/model/array.js';
import { formatDependencies } from '../../pkg/model/dependency.js';
import type { GangSpec } from '../../pkg/model/gang.js';
import type { Job, JobState } from '../../pkg/model/job.js';
import { parseDuration } from '../../pkg/model/parse.js';
import { formatGpu } from '../../pkg/model/resources.js';
import { records } from '../../pkg/store/codec.js';
import type { Store } from '../../pkg/store/store.js';
import { describeArrayTask } from './arrays.js';
import { DEFAULT_GRACE } from './flag-defaults.js';
import {
  ageSince,
  formatCommand,
  formatAge,
  formatCpu,
  formatKeyValues,
  formatMemory,
  formatTimestamp,
  renderFields,
  renderTable,
  trimNumber,
} from './format.js';

// ---- status ------------------------------------------------------------------

/** `titan status --output json`: the job, with the fields scripts read most always present. */
export type JobStatusView = Omit<Job, 'node' | 'exitCode' | 'reason'> & {
  status: JobState;
  node: string | null;
  exitCode: number | null;
  reason: string | null;
};

/** One replica of a gang in `titan status --output json`. */
export interface GangReplicaView {
  rank: number;
  id: string;
  state: JobState;
  node: string | null;
  attempt: number;
}

/** `titan status --output json` and the API's `GET /v1/jobs/{id}`: the view, with a gang replica's siblings. */
export type JobStatusDocument = JobStatusView & { replicas?: GangReplicaView[] };

/** With a gang replica's siblings (getGangReplicas), the view lists them as `replicas`. */
export function jobStatusView(job: Job, replicas?: readonly Job[]): JobStatusDocument {
  return {
    ...job,
    status: job.state,
    node: job.node ?? null,
    exitCode: job.exitCode ?? null,
    reason: job.reason ?? null,
    ...(replicas ? { replicas: replicas.map(replicaView) } : {}),
  };
}

export function replicaView(job: Job): GangReplicaView {
  return { rank: job.gang?.rank ?? 0, id: job.id, state: job.state, node: job.node ?? null, attempt: job.attempt };
}

const VIEW_ONLY = new Set(['status', 'replicas']);
const NULL_WHEN_ABSENT = new Set(['node', 'exitCode', 'reason']);

/**
 * The job back from its status view (what the API answers): the view's own
 * fields dropped, null node/exitCode/reason absent again. Keys keep their
 * order, so the job prints exactly as one read from etcd.
 */
export function jobOfStatusView(view: JobStatusDocument): Job {
  const job: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(view)) {
    if (VIEW_ONLY.has(key) || (value === null && NULL_WHEN_ABSENT.has(key))) continue;
    job[key] = value;
  }
  return job as unknown as Job;
}

/**
 * Every replica of the job's gang, in rank order; undefined for a job not in
 * a gang. The gang id is its rank-0 replica's id and all replicas were made
 * in one submit at one instant, so they are the jobs from that key on with
 * the same creation time: a short ascending scan, not a read of every job.
 */
export async function getGangReplicas(store: Store, job: Job): Promise<Job[] | undefined> {
  const gang = job.gang;
  if (!gang) return undefined;
  const found: Job[] = [];
  let createdAt: number | undefined;
  await store.scan(
    store.keys.collection('jobs'),
    records.job,
    (items) => {
      for (const { value } of items) {
        createdAt ??= value.createdAt;
        if (value.createdAt > createdAt) return false; // later submissions: past the gang
        if (value.gang?.id === gang.id) found.push(value);
      }
      return found.length < gang.size;
    },
    { fromKey: store.keys.job(gang.id), pageSize: 2 * gang.size },
  );
  return found.sort((a, b) => (a.gang?.rank ?? 0) - (b.gang?.rank ?? 0));
}

/** What the job runs, in one line: the image and its command, or the host command. */
export function describeWorkload(job: Job): string {
  const command = job.command.length > 0 ? formatCommand(job.command) : '';
  if (job.kind === 'docker') return command ? `${job.image ?? '?'}: ${command}` : `${job.image ?? '?'} (image default command)`;
  return command;
}

/** `<group> rank r of N (min M)`, plus the preferred topology domain. */
export function describeGang(gang: GangSpec): string {
  const topology = gang.topology !== undefined ? `, topology ${gang.topology}` : '';
  return `${gang.id} rank ${gang.rank} of ${gang.size} (min ${gang.minAvailable}${topology})`;
}

/** `replicas`: the job's gang siblings (the `replicas` of its status view), listed after the job's own fields. */
export function renderJobStatus(job: Job, now: number = Date.now(), replicas?: readonly GangReplicaView[]): string {
  const r = job.resources;
  const fields: [string, string][] = [
    ['ID', job.id],
    ['Name', job.name],
    ['Kind', job.kind],
  ];
  if (job.kind === 'docker') fields.push(['Image', job.image ?? '']);
  fields.push(
    ['Command', job.command.length > 0 ? formatCommand(job.command) : '(image default)'],
    ['State', job.cancelRequested && !['Cancelled', 'Succeeded', 'Failed'].includes(job.state) ? `${job.state} (cancel requested)` : job.state],
    ['Reason', job.reason ?? ''],
    ['Node', job.node ?? ''],
    ['Attempt', String(job.attempt)],
    ['Exit code', job.exitCode === undefined ? '' : String(job.exitCode)],
    ['Resources', `cpu ${formatCpu(r.cpu)}, memory ${formatMemory(r.memory)}, gpu ${formatGpu(r.gpuMilli)}`],
  );
  if (job.gpuDevices && job.gpuDevices.length > 0) {
    // Other jobs may hold the rest of a shared device: say which part is this job's.
    const share = r.gpuMilli < 1000 ? ` (a ${formatGpu(r.gpuMilli)} share)` : '';
    fields.push(['GPU devices', `${job.gpuDevices.join(',')}${share}`]);
  }
  if (job.gang) fields.push(['Gang', describeGang(job.gang)]);
  if (job.array) fields.push(['Array', describeArrayTask(job.array)]);
  if (job.after) fields.push(['After', formatDependencies(job.after)]);
  if (job.gpuModels) fields.push(['GPU models', job.gpuModels.join('|')]);
  if (job.nodeSelector) fields.push(['Node selector', formatKeyValues(job.nodeSelector)]);
  fields.push(
    ['Priority', String(job.priority)],
    ['Queue', job.queue ?? 'default'],
    ['Labels', formatKeyValues(job.labels)],
    ['Env', Object.keys(job.env).length === 0 ? '' : Object.keys(job.env).sort().join(',')],
    ['Created', formatTimestamp(job.createdAt, now)],
    ['Scheduled', formatTimestamp(job.scheduledAt, now)],
    ['Started', formatTimestamp(job.startedAt, now)],
    ['Finished', formatTimestamp(job.finishedAt, now)],
  );
  if (job.retries !== undefined) fields.push(['Retries', `${job.failureCount ?? 0} of ${job.retries} used`]);
  if (job.timeoutMs !== undefined) fields.push(['Timeout', `${trimNumber(job.timeoutMs / 1000, 3)}s`]);
  if (job.retryAt !== undefined && job.state === 'Pending') {
    const at = new Date(job.retryAt).toISOString();
    fields.push(['Retry at', job.retryAt > now ? `${at} (in ${formatAge(job.retryAt - now)})` : at]);
  }
  let text = renderFields(fields);
  if (replicas && replicas.length > 0) {
    text += '\nGang replicas:\n';
    text += indent(
      renderTable(
        ['RANK', 'ID', 'STATE', 'NODE', 'ATTEMPT'],
        replicas.map((r) => [String(r.rank), r.id, r.state, r.node ?? '', String(r.attempt)]),
      ),
    );
  }
  if (job.history && job.history.length > 0) {
    text += '\nEarlier attempts:\n';
    text += indent(
      renderTable(
        ['ATTEMPT', 'NODE', 'STATE', 'EXIT', 'FINISHED', 'REASON'],
        job.history.map((h) => [
          String(h.attempt),
          h.node ?? '',
          h.state,
          h.exitCode === undefined ? '' : String(h.exitCode),
          `${ageSince(h.finishedAt, now)} ago`,
          h.reason ?? h.failure ?? '',
        ]),
      ),
    );
  }
  return text;
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '  ');
}

// ---- cancel ------------------------------------------------------------------

export function parseGrace(text: string | undefined): number {
  return parseDuration(text ?? DEFAULT_GRACE, 'grace');
}

export interface CancelOutcome {
  job: Job;
  /** True when the job was cancelled at once (it was pending); false when a worker must stop it. */
  immediate: boolean;
  graceMs: number;
}

/** Cancels a job; a job that already ended is a Conflict (exit 1). */
export async function cancelJob(store: Store, jobId: string, graceMs: number): Promise<CancelOutcome> {
  const job = await store.cancelJob(jobId, graceMs);
  return { job, immediate: job.state === 'Cancelled', graceMs };
}

export function describeCancel(outcome: CancelOutcome): string {
  const { job } = outcome;
  if (outcome.immediate) return `job ${jobRefOf(job)} cancelled`;
  const grace = outcome.graceMs >= 1000 ? `${outcome.graceMs / 1000}s` : `${outcome.graceMs}ms`;
  return `job ${jobRefOf(job)} is ${job.state}${job.node ? ` on ${job.node}` : ''}: cancel requested; the worker stops it (grace ${grace})`;
}
