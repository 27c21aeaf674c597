import type { Job, LogEntry } from '../../pkg/model/index.js';
import { encode } from '../../pkg/store/codec.js';
import { Store } from '../../pkg/store/store.js';

export { randomPrefix } from '../harness/wait.js';

export function openStore(endpoints: string, prefix: string): Store {
  return new Store({ endpoints: [endpoints], prefix });
}

/** Every key under the prefix with its value and revisions, plus the cluster revision. */
export async function snapshot(store: Store): Promise<{ revision: string; kvs: string[] }> {
  const res = await store.client.kv.range({ key: Buffer.from(store.keys.root + '/'), range_end: Buffer.from(store.keys.root + '0') });
  return {
    revision: res.header.revision,
    kvs: res.kvs.map((kv) => `${kv.key.toString()}=${kv.value.toString('base64')}@${kv.create_revision}/${kv.mod_revision}`),
  };
}

export { makeJob } from '../harness/jobs.js';

/** Writes a job as-is, bypassing state checks: tests play the master and worker. */
export async function putJob(store: Store, job: Job): Promise<void> {
  await store.client.put(store.keys.job(job.id)).value(encode(job));
}

/** Writes one log chunk directly, as node `nodeId` stores it (the worker's fenced append is not needed to test reading). */
export async function putChunk(store: Store, jobId: string, attempt: number, seq: number, entries: LogEntry[], nodeId = 'n1'): Promise<void> {
  await store.client.put(store.keys.logChunk(nodeId, jobId, attempt, seq)).value(encode({ seq, entries }));
}

export function out(data: string): LogEntry {
  return { stream: 'stdout', data };
}

export function err(data: string): LogEntry {
  return { stream: 'stderr', data };
}

export async function countKeys(store: Store, prefix: string): Promise<number> {
  return Number((await store.client.getAll().prefix(prefix).count()));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

