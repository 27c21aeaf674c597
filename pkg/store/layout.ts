import { TitanError } from '../model/errors.js';
import { encode, records, type LayoutRecord } from './codec.js';
import type { Store } from './store.js';
import { txnCompare, txnOp } from './txn.js';

/**
 * The version of the key layout and record shapes this build reads and
 * writes (docs/etcd-layout.md). Data under a prefix carries the version it
 * is in (Keys.layout()); a component never works on data of another version,
 * because it would misread it: it says so and exits. A prefix without the key
 * is version 1 (written before versions were recorded).
 */
export const LAYOUT_VERSION = 1;

/** The version the data under the store's prefix is in, as stored (1 when the key is absent). */
export async function readLayoutVersion(store: Store): Promise<{ version: number; record?: LayoutRecord }> {
  const found = await store.get(store.keys.layout(), records.layout);
  return found ? { version: found.value.version, record: found.value } : { version: 1 };
}

/**
 * Checks that the data is in this build's layout; `record` (the master) also
 * writes the version where none is recorded yet. A mismatch is a Conflict
 * whose message says which side to upgrade or that `titan migrate` is due.
 */
export async function checkLayout(store: Store, component: string, options: { record?: boolean } = {}): Promise<void> {
  const { version, record } = await readLayoutVersion(store);
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

async function writeLayoutIfAbsent(store: Store, component: string): Promise<void> {
  const key = store.keys.layout();
  const value: LayoutRecord = { version: LAYOUT_VERSION, writtenAt: Date.now(), writtenBy: component };
  await store.txn([txnCompare.absent(key)], [txnOp.put(key, encode(value))]);
}

/**
 * `titan migrate`: brings the data under the prefix to this build's layout.
 * Version 1 is the first recorded one, so today this records it where it is
 * missing; each later version adds its step here. Returns what it did.
 */
export async function migrateLayout(store: Store, component: string): Promise<string> {
  const { version, record } = await readLayoutVersion(store);
  if (version > LAYOUT_VERSION) {
    throw new TitanError('Conflict', `the data is in layout version ${version}, newer than this titan (${LAYOUT_VERSION}): use a newer titan`);
  }
  if (record) return `the data under ${store.keys.root} is in layout version ${version}: nothing to migrate`;
  await writeLayoutIfAbsent(store, component);
  return `recorded layout version ${LAYOUT_VERSION} under ${store.keys.root}`;
}
