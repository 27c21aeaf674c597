import type { IRequestOp } from 'etcd3';
import { TitanError } from '../model/errors.js';
import { nodeOfAttempt, type Job } from '../model/job.js';
import { encode, records, type LayoutRecord } from './codec.js';
import type { Store } from './store.js';
import { MAX_TXN_OPS, prefixEnd, txnCompare, txnOp } from './txn.js';

/**
 * The version of the key layout and record shapes this build reads and
 * writes (docs/etcd-layout.md). Data under a prefix carries the version it
 * is in (Keys.layout()); a component never works on data of another version,
 * because it would misread it: it says so and exits.
 *
 * - 1: nodes wrote job records, and logs lived under `logs/<job>/`.
 * - 2: nodes write only under their own prefixes (`reports/<node>/`,
 *   `logs/<node>/`), read only their assignments, which always carry the job.
 */
export const LAYOUT_VERSION = 2;

/**
 * The version the data under the store's prefix is in, as recorded. A prefix
 * without the key was written before versions were recorded (or by nobody
 * yet: masters record it first): with `infer`, version 1 if its output is
 * kept the version 1 way (`logs/<job>/<attempt>/<seq>`), else it is fresh
 * (jobs, nodes and queues read the same in both versions). Without `infer`
 * (a node, whose role cannot read all output) the current version.
 */
export async function readLayoutVersion(store: Store, options: { infer?: boolean } = { infer: true }): Promise<{ version: number; record?: LayoutRecord }> {
  const found = await store.get(store.keys.layout(), records.layout);
  if (found) return { version: found.value.version, record: found.value };
  if (!options.infer) return { version: LAYOUT_VERSION };
  const logs = store.keys.collection('logs');
  const res = await store.call(() => store.client.kv.range({ key: Buffer.from(logs), range_end: prefixEnd(logs), limit: 1, keys_only: true }));
  const first = res.kvs[0]?.key.toString().slice(logs.length).split('/');
  return { version: first?.length === 3 ? 1 : LAYOUT_VERSION };
}

/**
 * Checks that the data is in this build's layout; `record` (the master)
 * also infers the version of unrecorded data and records it where none is
 * yet. A mismatch is a Conflict whose message says which side to upgrade or
 * that `titan migrate` is due.
 */
export async function checkLayout(store: Store, component: string, options: { record?: boolean } = {}): Promise<void> {
  const { version, record } = await readLayoutVersion(store, { infer: options.record === true });
  if (version > LAYOUT_VERSION) {
    throw new TitanError(
      'Conflict',
      `the data under ${store.keys.root} is in layout version ${version} (written by ${record?.writtenBy ?? 'a newer Titan'}); ` +
        `this ${component} reads version ${LAYOUT_VERSION}: upgrade it to the version the cluster runs`,
    );
  }
  if (version < LAYOUT_VERSION) {
    throw new TitanError(
      'Conflict',
      `the data under ${store.keys.root} is in layout version ${version}; this ${component} reads version ${LAYOUT_VERSION}: ` +
        'run titan migrate (with an operator or root etcd user) before starting it',
    );
  }
  if (options.record && !record) await writeLayoutIfAbsent(store, component);
}

function layoutPut(store: Store, component: string): IRequestOp {
  const value: LayoutRecord = { version: LAYOUT_VERSION, writtenAt: Date.now(), writtenBy: component };
  return txnOp.put(store.keys.layout(), encode(value));
}

async function writeLayout(store: Store, component: string): Promise<void> {
  await store.txn([], [layoutPut(store, component)]);
}

async function writeLayoutIfAbsent(store: Store, component: string): Promise<void> {
  await store.txn([txnCompare.absent(store.keys.layout())], [layoutPut(store, component)]);
}

/**
 * `titan migrate`: brings the data under the prefix to this build's layout,
 * on a stopped cluster (no master leads, no node is registered, no attempt
 * is assigned: a component of the old layout must not write while it runs).
 * 1 → 2 moves each log chunk under the node that ran its attempt. Returns
 * what it did.
 */
export async function migrateLayout(store: Store, component: string): Promise<string> {
  const { version, record } = await readLayoutVersion(store);
  if (version > LAYOUT_VERSION) {
    throw new TitanError('Conflict', `the data is in layout version ${version}, newer than this titan (${LAYOUT_VERSION}): use a newer titan`);
  }
  if (version === LAYOUT_VERSION) {
    if (record) return `the data under ${store.keys.root} is in layout version ${version}: nothing to migrate`;
    await writeLayout(store, component);
    return `recorded layout version ${LAYOUT_VERSION} under ${store.keys.root}`;
  }
  await requireStopped(store);
  const moved = await moveLogsUnderNodes(store);
  await writeLayout(store, component);
  return `migrated ${store.keys.root} from layout version ${version} to ${LAYOUT_VERSION}: ${moved} log chunks moved under their nodes`;
}

async function requireStopped(store: Store): Promise<void> {
  const count = async (prefix: string): Promise<number> =>
    Number((await store.call(() => store.client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), count_only: true }))).count);
  const { keys } = store;
  const busy = [
    [await store.leaderTerm(), 'a master leads'],
    [(await count(keys.collection('nodes'))) > 0, 'nodes are registered'],
    [(await count(keys.collection('assign'))) > 0, 'attempts are assigned'],
  ].filter(([on]) => on).map(([, what]) => what);
  if (busy.length > 0) {
    throw new TitanError(
      'Conflict',
      `cannot migrate a running cluster (${busy.join(', ')}): stop submitting, let running jobs end or cancel them, stop every master and worker, then run titan migrate again`,
    );
  }
}

/** Version 1 kept output at `logs/<job>/<attempt>/<seq>`; version 2 under the node: `logs/<node>/<job>/<attempt>/<seq>`. */
async function moveLogsUnderNodes(store: Store): Promise<number> {
  const { keys } = store;
  const logs = keys.collection('logs');
  const jobs = new Map<string, Job | undefined>();
  let moved = 0;
  let fromKey: string | undefined;
  for (;;) {
    const batch: { key: string; value: Buffer; jobId: string; attempt: number; seq: number }[] = [];
    await store.scanKeyValues(
      logs,
      (kvs) => {
        for (const kv of kvs) {
          const key = kv.key.toString();
          const [jobId, attempt, seq, more] = key.slice(logs.length).split('/');
          if (more === undefined && seq !== undefined) batch.push({ key, value: kv.value, jobId, attempt: Number(attempt), seq: Number(seq) });
          if (batch.length >= MAX_TXN_OPS / 2) return false;
        }
      },
      fromKey === undefined ? {} : { fromKey },
    );
    if (batch.length === 0) return moved;
    const ops: IRequestOp[] = [];
    for (const chunk of batch) {
      if (!jobs.has(chunk.jobId)) jobs.set(chunk.jobId, (await store.getJob(chunk.jobId).catch(() => undefined))?.value);
      const job = jobs.get(chunk.jobId);
      // Output of an attempt whose node is not known any more stays readable to titan doctor and the operator.
      const node = (job && nodeOfAttempt(job, chunk.attempt)) ?? 'unknown-node';
      ops.push(txnOp.del(chunk.key), txnOp.put(keys.logChunk(node, chunk.jobId, chunk.attempt, chunk.seq), chunk.value));
    }
    await store.txn([], ops);
    moved += batch.length;
    fromKey = `${batch[batch.length - 1].key}\u0000`;
  }
}
