import { CorruptRecordError, decode, flatString, looksLikeRecord, records, type InformerOptions } from '../../pkg/store/index.js';
import { DEPENDENCY_CONDITIONS, type Dependency, type GangSpec, type Job, type JobKind, type JobState, type Resources } from '../../pkg/model/index.js';
import type { PassJob } from '../scheduler/index.js';

/**
 * What the master keeps of a pending job: what placement and the queue order
 * need, and the stored value itself as msgpack bytes (in a latin1 string: one
 * compact heap object), decoded again only when the master writes the job.
 * 100,000 queued jobs take about a third of the memory of their decoded values.
 * It is a PassJob, so the scheduler takes it as it is.
 */
export interface PendingJob extends PassJob {
  kind: JobKind;
  gpuModels?: string[];
  nodeSelector?: Record<string, string>;
  gang?: GangSpec;
  /** The jobs it waits for (`--after`); set only before its first placement, the only time they matter. */
  after?: Dependency[];
  /** Revision of the stored job, which every write of the master compares. */
  modRevision: number;
  /** The stored value (msgpack) as a latin1 string. */
  stored: string;
}

/**
 * What the master keeps of a job that is not pending but that pending jobs
 * wait for (DependencyIndex.isParent): its state, the only thing their
 * conditions read.
 */
export interface ParentJob {
  id: string;
  state: JobState;
}

/** A job as the master's jobs informer hands it over: pending, a parent of pending jobs, or (most jobs) nothing. */
export type JobEntry = PendingJob | ParentJob | null;

export function isPendingJob(entry: JobEntry | undefined): entry is PendingJob {
  return entry !== null && entry !== undefined && 'stored' in entry;
}

/** Decodes a pending job's stored value (validated when it was read: decodePendingJob). */
export function storedJob(job: PendingJob): Job {
  return decode<Job>(Buffer.from(job.stored, 'latin1'));
}

const PENDING_BYTES = Buffer.from('Pending');
/** Jobs of the same shape share one Resources object (bounded: cleared when it grows large). */
const sharedResources = new Map<string, Resources>();

export function shareResources(r: Resources): Resources {
  const key = `${r.cpu}|${r.memory}|${r.gpuMilli}`;
  let shared = sharedResources.get(key);
  if (!shared) {
    if (sharedResources.size >= 4096) sharedResources.clear();
    shared = Object.freeze({ cpu: r.cpu, memory: r.memory, gpuMilli: r.gpuMilli });
    sharedResources.set(key, shared);
  }
  return shared;
}
/** The compact form of a job, or null when it is not pending. */
export function pendingJobOf(job: Job, stored: Buffer | string, modRevision: number): PendingJob | null {
  if (job.state !== 'Pending') return null;
  return {
    id: flatString(job.id),
    kind: job.kind === 'docker' ? 'docker' : job.kind === 'shell' ? 'shell' : job.kind,
    resources: shareResources(job.resources),
    gpuModels: job.gpuModels?.map(flatString),
    nodeSelector: job.nodeSelector ? Object.fromEntries(Object.entries(job.nodeSelector).map(([k, v]) => [flatString(k), flatString(v)])) : undefined,
    priority: job.priority,
    ...(job.queue !== undefined ? { queue: flatString(job.queue) } : {}),
    ...(job.preemptible !== undefined ? { preemptible: job.preemptible } : {}),
    ...(job.minRuntimeMs !== undefined ? { minRuntimeMs: job.minRuntimeMs } : {}),
    ...(job.gang ? { gang: { ...job.gang, id: flatString(job.gang.id), ...(job.gang.topology ? { topology: flatString(job.gang.topology) } : {}) } } : {}),
    ...(job.timeoutMs !== undefined ? { timeoutMs: job.timeoutMs } : {}),
    // Only a capped array's tasks need their array in the queue (the pass counts them against %max).
    ...(job.array?.max !== undefined ? { array: { id: flatString(job.array.id), max: job.array.max } } : {}),
    ...(job.after && job.attempt === 0 ? { after: compactDependencies(job.after) } : {}),
    createdAt: job.createdAt,
    attempt: job.attempt,
    retryAt: job.retryAt,
    reason: job.reason === undefined ? undefined : flatString(job.reason),
    reasonAt: job.reasonAt,
    modRevision,
    stored: typeof stored === 'string' ? stored : stored.toString('latin1'),
  };
}

/** Conditions whose strings share nothing with the decoded record (flatString), so it can be collected. */
function compactDependencies(after: readonly Dependency[]): Dependency[] {
  return after.map((d) => ({ condition: DEPENDENCY_CONDITIONS.find((c) => c === d.condition) ?? d.condition, jobs: d.jobs.map(flatString) }));
}

/**
 * The jobs informer's decoder: a pending job becomes a PendingJob, a job
 * pending jobs wait for (`isParentKey`) a ParentJob, anything else null. A
 * value without the bytes "Pending" cannot be a pending job in any msgpack
 * encoding, so most jobs (scheduled, running, ended: the master's own
 * placements among them) are never decoded at all; of those only bytes that
 * cannot be a record at all are found corrupt here (readers of the whole
 * record find the rest). Parents are decoded whole, whatever their state:
 * that is how the master learns that one ended. Throws CorruptRecordError.
 */
export function decodeJobEntry(value: Buffer, key = '', modRevision?: string, isParentKey?: (key: string) => boolean): JobEntry {
  const parent = isParentKey?.(key) === true;
  if (!parent && value.indexOf(PENDING_BYTES) < 0) {
    if (!looksLikeRecord(value)) throw new CorruptRecordError('job', key, 'not a MessagePack map', modRevision);
    return null;
  }
  const job = records.job.decode(value, key, modRevision);
  return pendingJobOf(job, value, 0) ?? (parent ? { id: flatString(job.id), state: job.state } : null);
}

/** decodeJobEntry for a master no pending job of which waits for others: a PendingJob or null. */
export function decodePendingJob(value: Buffer, key = '', modRevision?: string): PendingJob | null {
  return decodeJobEntry(value, key, modRevision) as PendingJob | null;
}

/** How the master follows the jobs collection: pending jobs, compact, and the states of the jobs they wait for. */
export function jobsInformerOptions(isParentKey: (key: string) => boolean): InformerOptions<JobEntry> {
  return {
    decode: (value, key, modRevision) => decodeJobEntry(value, key, modRevision, isParentKey),
    keepListed: (entry) => entry !== null,
    kind: 'job',
  };
}
