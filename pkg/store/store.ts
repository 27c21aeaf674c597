import { AttemptRecords } from './attempt-records.js';
import { JobRecords } from './job-records.js';
import { LeaderRecords } from './leader-records.js';
import { LogRecords } from './log-records.js';
import { NodeRecords } from './node-records.js';
import { QueueRecords } from './queue-records.js';
import { StoreCore } from './store-core.js';
import { TokenRecords } from './token-records.js';

export type { LeaderInfo } from './codec.js';
export type { ReadResult, ScanOptions, StoreOptions, TxnResult } from './store-core.js';

/**
 * The typed face of etcd for every Titan component. It owns the key layout
 * (through Keys) and the codec, and groups writes that must be atomic into
 * single transactions. Its operations live one kind of record to a file
 * (the classes below, each over StoreCore's reads, scans and transactions);
 * a Store is all of them on one connection: their methods are copied onto
 * its prototype below, and the interface of the same name tells the
 * compiler so (TypeScript's mixin pattern).
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Store extends StoreCore {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface Store extends JobRecords, AttemptRecords, QueueRecords, NodeRecords, TokenRecords, LogRecords, LeaderRecords {}

const RECORD_KINDS = [JobRecords, AttemptRecords, QueueRecords, NodeRecords, TokenRecords, LogRecords, LeaderRecords] as const;
for (const kind of RECORD_KINDS) {
  for (const name of Object.getOwnPropertyNames(kind.prototype)) {
    if (name === 'constructor') continue;
    if (Object.prototype.hasOwnProperty.call(Store.prototype, name)) throw new Error(`Store.${name} is defined by two kinds of record`);
    Object.defineProperty(Store.prototype, name, Object.getOwnPropertyDescriptor(kind.prototype, name) as PropertyDescriptor);
  }
}
