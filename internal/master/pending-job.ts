import { CorruptRecordError, decode, flatString, looksLikeRecord, records, type InformerOptions } from '../../pkg/store/index.js';
import type { GangSpec, Job, JobKind, Resources } from '../../pkg/model/index.js';
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
  /** Revision of the stored job, which every write of the master compares. */
  modRevision: number;
  /** The stored value (msgpack) as a latin1 string. */
  stored: string;
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
    createdAt: job.createdAt,
    attempt: job.attempt,
    retryAt: job.retryAt,
    reason: job.reason === undefined ? undefined : flatString(job.reason),
    reasonAt: job.reasonAt,
    modRevision,
    stored: typeof stored === 'string' ? stored : stored.toString('latin1'),
  };
}

/**
 * The jobs informer's decoder: a pending job becomes a PendingJob, anything
 * else null. A value without the bytes "Pending" cannot be a pending job in
 * any msgpack encoding, so most jobs (scheduled, running, ended: the
 * master's own placements among them) are never decoded at all; of those
 * only bytes that cannot be a record at all are found corrupt here (readers
 * of the whole record find the rest). Throws CorruptRecordError.
 */
export function decodePendingJob(value: Buffer, key = '', modRevision?: string): PendingJob | null {
  if (value.indexOf(PENDING_BYTES) < 0) {
    if (!looksLikeRecord(value)) throw new CorruptRecordError('job', key, 'not a MessagePack map', modRevision);
    return null;
  }
  return pendingJobOf(records.job.decode(value, key, modRevision), value, 0);
}

/** How the master follows the jobs collection: pending jobs only, compact. */
export const JOBS_INFORMER_OPTIONS: InformerOptions<PendingJob | null> = {
  decode: decodePendingJob,
  keepListed: (job) => job !== null,
  kind: 'job',
};
