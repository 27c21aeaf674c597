import type { IKeyValue } from 'etcd3';
import type { RecordCodec } from './codec.js';

/** A decoded value with the revisions that transactions compare against. */
export interface Versioned<T> {
  key: string;
  value: T;
  modRevision: string;
  createRevision: string;
}

export interface WatchEvent<T> {
  type: 'put' | 'delete';
  key: string;
  /** Absent on delete. */
  value?: T;
  modRevision: string;
  createRevision: string;
}

/** Decodes and validates a key-value; throws CorruptRecordError for a record that is not valid. */
export function toVersioned<T>(kv: IKeyValue, codec: RecordCodec<T>): Versioned<T> {
  const key = kv.key.toString();
  return {
    key,
    value: codec.decode(kv.value, key, kv.mod_revision),
    modRevision: kv.mod_revision,
    createRevision: kv.create_revision,
  };
}
