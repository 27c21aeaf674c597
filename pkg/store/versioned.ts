import type { IKeyValue } from 'etcd3';
import { decode } from './codec.js';

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

export function toVersioned<T>(kv: IKeyValue): Versioned<T> {
  return {
    key: kv.key.toString(),
    value: decode<T>(kv.value),
    modRevision: kv.mod_revision,
    createRevision: kv.create_revision,
  };
}
