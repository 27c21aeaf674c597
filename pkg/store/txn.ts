import type { ICompare, IRequestOp } from 'etcd3';

/** Small builders for raw transaction parts, so batched transactions need no per-op promises. */
export const txnOp = {
  put(key: string, value: Buffer, lease?: string): IRequestOp {
    return { request_put: { key: Buffer.from(key), value, ...(lease ? { lease } : {}) } };
  },
  del(key: string): IRequestOp {
    return { request_delete_range: { key: Buffer.from(key) } };
  },
  /** Deletes every key under a prefix. */
  delPrefix(prefix: string): IRequestOp {
    return { request_delete_range: { key: Buffer.from(prefix), range_end: prefixEnd(prefix) } };
  },
  get(key: string): IRequestOp {
    return { request_range: { key: Buffer.from(key) } };
  },
};

export const txnCompare = {
  modRevision(key: string, revision: string): ICompare {
    return { key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: revision };
  },
  createRevision(key: string, revision: string): ICompare {
    return { key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: revision };
  },
  absent(key: string): ICompare {
    return { key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 };
  },
  /** Holds while the key exists (absent's opposite). */
  exists(key: string): ICompare {
    return { key: Buffer.from(key), target: 'Create', result: 'Greater', create_revision: 0 };
  },
};

/** etcd's default --max-txn-ops is 128 (per compare list and per op list). */
export const MAX_TXN_OPS = 128;

/** A placement needs two compares and two puts; one compare is kept for the leadership guard. */
export const MAX_PLACEMENTS_PER_TXN = Math.floor((MAX_TXN_OPS - 1) / 2);

/** The smallest key greater than every key with this prefix. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
