import { GRPCResourceExhastedError, type Etcd3, type ICompare, type IKeyValue, type IRequestOp } from 'etcd3';
import { TitanError } from '../model/errors.js';
import { connectEtcd, normalizeEndpoints, type ConnectOptions } from './client.js';
import { CorruptRecordError, type RecordCodec } from './codec.js';
import { isCompactedError, storeError } from './errors.js';
import { Keys } from './keys.js';
import { prefixEnd } from './txn.js';
import { toVersioned, type Versioned } from './versioned.js';

export interface StoreOptions extends ConnectOptions {
  /** Key prefix; lets several clusters (or tests) share one etcd. */
  prefix?: string;
}

/** Whether a transaction's compares held; revision is the store's revision after it. */
export interface TxnResult {
  succeeded: boolean;
  revision: string;
}

export interface ScanOptions {
  /**
   * Most keys per read (default 500). Reads are also sized by bytes
   * (PAGE_BYTES), so pages of large values hold fewer keys.
   */
  pageSize?: number;
  /** Newest (last key) first. */
  descending?: boolean;
  /** Start here instead of at the prefix (ascending scans). */
  fromKey?: string;
}

/** How often an optimistic read-modify-write is retried before giving up. */
export const MAX_CAS_RETRIES = 50;

/** What a paged read skipped as corrupt (see CorruptRecordError), with the revision it read at. */
export interface ReadResult {
  revision: string;
  /** Records that did not decode, in key order (at most MAX_CORRUPT_KEPT; `corruptCount` counts all). */
  corrupt: CorruptRecordError[];
  corruptCount: number;
}

const MAX_CORRUPT_KEPT = 100;

/**
 * Bytes a paged read aims at per reply: gRPC refuses replies over 4 MiB, and
 * one reply of many large records (job specs up to 64 KiB and more) would be
 * over it. The next page's key count follows the sizes seen so far.
 */
export const PAGE_BYTES = 1024 * 1024;

/** Keys of a first page: even at the largest records Titan writes (job specs are capped at 64 KiB) it stays far below the reply limit. */
const FIRST_PAGE_KEYS = 16;

/** Keys for the next page: as many as fit PAGE_BYTES at the sizes of this one, at most `maxKeys`. */
export function nextPageLimit(kvs: readonly IKeyValue[], maxKeys: number): number {
  if (kvs.length === 0) return maxKeys;
  let bytes = 0;
  for (const kv of kvs) bytes += kv.key.length + kv.value.length;
  return Math.max(1, Math.min(maxKeys, Math.floor((PAGE_BYTES * kvs.length) / Math.max(1, bytes))));
}

/** A reply over gRPC's message limit (RESOURCE_EXHAUSTED on a read), as thrown or as wrapped by Store.call. */
function tooLarge(err: unknown): boolean {
  return err instanceof GRPCResourceExhastedError || (err instanceof Error && err.cause instanceof GRPCResourceExhastedError);
}

/** Tries of a paged list whose revision a compaction overtook. */
const LIST_ATTEMPTS = 3;

/**
 * One connection to etcd and the reads and writes every kind of record is
 * made of: a key, a paged list or scan at one revision, a transaction, all
 * turning transport failures into actionable errors. The records' own
 * operations build on it, one file per kind (see store.ts).
 */
export class StoreCore {
  readonly client: Etcd3;
  readonly keys: Keys;
  readonly endpoints: string[];
  private readonly heldRevisions = new Map<symbol, bigint>();
  constructor(options: StoreOptions) {
    this.endpoints = normalizeEndpoints(options.endpoints, options.tls !== undefined);
    if (this.endpoints.length === 0) throw new TitanError('InvalidInput', 'endpoints: at least one etcd endpoint is needed');
    this.client = connectEtcd({ ...options, endpoints: this.endpoints });
    this.keys = new Keys(options.prefix);
  }
  close(): void {
    this.client.close();
  }
  /** Runs an etcd call, turning transport failures into actionable errors. */
  async call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw storeError(err, this.endpoints);
    }
  }
  /**
   * One key. `serializable` reads the local member without a quorum round:
   * cheaper, possibly stale, so only for reads a compare-and-swap re-checks.
   */
  async get<T>(key: string, codec: RecordCodec<T>, options: { serializable?: boolean } = {}): Promise<Versioned<T> | undefined> {
    const res = await this.call(() => this.client.kv.range({ key: Buffer.from(key), serializable: options.serializable ?? false }));
    return res.kvs.length > 0 ? toVersioned(res.kvs[0], codec) : undefined;
  }
  /**
   * Everything under a prefix, with the revision the read saw (watch from
   * revision + 1). A read whose revision is compacted away between its
   * pages starts over, a few times. Corrupt records are left out and
   * reported in `corrupt`.
   */
  async list<T>(prefix: string, codec: RecordCodec<T>, options: ScanOptions = {}): Promise<ReadResult & { items: Versioned<T>[] }> {
    for (let attempt = 1; ; attempt++) {
      const items: Versioned<T>[] = [];
      try {
        const result = await this.scan(prefix, codec, (page) => void items.push(...page), options);
        return { ...result, items };
      } catch (err) {
        if (attempt >= LIST_ATTEMPTS || !isCompactedError(err)) throw err;
      }
    }
  }
  /**
   * Marks a read of several pages at `revision` as in progress, until the
   * returned function is called: oldestHeldRevision tells a compactor in this
   * process not to compact past it.
   */
  holdRevision(revision: string): () => void {
    const id = Symbol(revision);
    this.heldRevisions.set(id, BigInt(revision));
    return () => void this.heldRevisions.delete(id);
  }
  oldestHeldRevision(): bigint | undefined {
    let oldest: bigint | undefined;
    for (const r of this.heldRevisions.values()) if (oldest === undefined || r < oldest) oldest = r;
    return oldest;
  }
  /**
   * Everything under a prefix, read in pages all at the revision of the first
   * page: for collections too large for one gRPC message (4 MiB by default,
   * about 20k jobs). `onPage` returns false to stop early; `descending` walks
   * from the last key (newest job first, as job ids sort by creation time).
   */
  async scan<T>(
    prefix: string,
    codec: RecordCodec<T>,
    onPage: (items: Versioned<T>[]) => boolean | void,
    options: ScanOptions = {},
  ): Promise<ReadResult> {
    const corrupt: CorruptRecordError[] = [];
    let corruptCount = 0;
    const { revision } = await this.scanKeyValues(
      prefix,
      (kvs) => {
        const page: Versioned<T>[] = [];
        for (const kv of kvs) {
          try {
            page.push(toVersioned(kv, codec));
          } catch (err) {
            if (!(err instanceof CorruptRecordError)) throw err;
            if (corruptCount++ < MAX_CORRUPT_KEPT) corrupt.push(err);
          }
        }
        return onPage(page);
      },
      options,
    );
    return { revision, corrupt, corruptCount };
  }
  /** scan, with the raw key-values: for callers that decode values their own way. */
  async scanKeyValues(prefix: string, onPage: (kvs: IKeyValue[]) => boolean | void, options: ScanOptions = {}): Promise<{ revision: string }> {
    const maxKeys = options.pageSize ?? 500;
    // Sizes are unknown until the first page: it stays small, the next ones follow what it held.
    let limit = Math.min(maxKeys, FIRST_PAGE_KEYS);
    let start = Buffer.from(options.fromKey ?? prefix);
    let end = prefixEnd(prefix);
    let revision: string | undefined;
    let release: (() => void) | undefined;
    try {
      for (;;) {
        const range = {
          key: start,
          range_end: end,
          limit,
          ...(revision !== undefined ? { revision } : {}),
          ...(options.descending ? { sort_order: 'Descend' as const, sort_target: 'Key' as const } : {}),
        };
        let res;
        try {
          res = await this.call(() => this.client.kv.range(range));
        } catch (err) {
          // A reply over gRPC's limit: the same page again with fewer keys.
          if (limit > 1 && tooLarge(err)) {
            limit = Math.max(1, Math.floor(limit / 4));
            continue;
          }
          throw err;
        }
        revision ??= res.header.revision;
        limit = nextPageLimit(res.kvs, maxKeys);
        if (onPage(res.kvs) === false || !res.more || res.kvs.length === 0) return { revision };
        release ??= this.holdRevision(revision);
        const last = res.kvs[res.kvs.length - 1].key;
        if (options.descending) end = last;
        else start = Buffer.concat([last, Buffer.from([0])]);
      }
    } finally {
      release?.();
    }
  }
  /** A raw transaction; true when the compares held and the writes happened. */
  async txn(compare: ICompare[], success: IRequestOp[]): Promise<TxnResult> {
    const res = await this.call(() => this.client.kv.txn({ compare, success }));
    return { succeeded: res.succeeded, revision: res.header.revision };
  }
  /** etcd's current revision: a linearizable read that counts one key. */
  async currentRevision(): Promise<string> {
    const res = await this.call(() => this.client.kv.range({ key: Buffer.from(this.keys.leader()), count_only: true }));
    return res.header.revision;
  }
  /** Drops etcd's history before a revision (watchers further behind re-list). */
  async compact(revision: string): Promise<void> {
    await this.call(() => this.client.kv.compact({ revision, physical: false }));
  }
}
