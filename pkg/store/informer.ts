import type { IWatchResponse, Watcher } from 'etcd3';
import { retryCall } from '../concurrency/call-retry.js';
import { CorruptRecordError, type RecordKind } from './codec.js';
import { CallbackGuard, cancelWatcher, warnProcess, WatchCallbackError } from './watch.js';
import type { Store } from './store.js';
import type { Versioned, WatchEvent } from './versioned.js';

export interface InformerHandlers<T> {
  /** The full current list; replaces whatever the consumer cached. */
  reset(items: Versioned<T>[], revision: string): void;
  /** Changes after the list, in revision order, one batch per watch response. */
  events(events: WatchEvent<T>[], revision: string): void;
  /**
   * A watch failed, or a list, or one of these handlers threw (a
   * WatchCallbackError, with the key): a re-list is about to happen (logging
   * only). Without it, such failures are process warnings.
   */
  error?(err: Error): void;
  /**
   * A record that does not decode (see CorruptRecordError), once per version
   * of its key: it is left out of `reset`, and a watched put of it comes as a
   * delete, so the consumer drops whatever it held for the key.
   */
  corrupt?(err: CorruptRecordError): void;
}

export interface InformerOptions<T> {
  /**
   * Turns a stored value into what the consumer keeps, for listed and watched
   * keys alike: a RecordCodec's decode, which validates, or a consumer's own
   * that returns a compact object for values it needs a few fields of (so
   * the full decoded values never outlive the page or event they came in).
   * Whatever it throws makes the record corrupt, never the informer fail.
   */
  decode(value: Buffer, key: string, modRevision: string): T;
  /** What the records are, for the CorruptRecordError of one that is not (default: derived from the error). */
  kind?: RecordKind;
  /** Listed values for which this is false are left out of `reset` (a cache of a subset). Watch events are always delivered. */
  keepListed?(value: T): boolean;
  /** Keys per list read (each reply must stay under gRPC's 4 MiB). */
  pageSize?: number;
}

export interface Informer {
  /** Resolves once the first list was delivered. */
  ready: Promise<void>;
  /**
   * How far this informer has delivered: the newest revision handed to its
   * consumer (a list's, or a watched event's) and when (performance.now()).
   * A compaction past it would cut this watch off.
   */
  delivered(): DeliveredRevision | undefined;
  /** Keys under the prefix whose current record is corrupt, as far as this informer has seen. */
  quarantined(): ReadonlyMap<string, CorruptRecordError>;
  /** Handler calls that threw (each reported through `error`): the consumer's bugs, survived. */
  callbackFailures(): number;
  stop(): Promise<void>;
}

export interface DeliveredRevision {
  revision: bigint;
  at: number;
}

/** Re-lists after failures wait about this long at first, then longer (call-retry's backoff)... */
const RELIST_FIRST_DELAY_MS = 100;
/** ...up to this. */
const RELIST_MAX_DELAY_MS = 5000;
const DEFAULT_PAGE_SIZE = 500;

/**
 * List-then-watch of one key prefix, the way a cache must follow etcd: watch
 * from the list's revision + 1; when the watch is cancelled (compaction) or
 * fails, re-list and start again, so no event is ever silently missed.
 */
export function startInformer<T>(store: Store, prefix: string, handlers: InformerHandlers<T>, options: InformerOptions<T>): Informer {
  let watcher: Watcher | undefined;
  let stopped = false;
  const stopping = new AbortController();
  const guard = new CallbackGuard((err) => {
    // The error handler is guarded too, by a guard that cannot recurse.
    if (handlers.error) errorGuard.run(prefix, 'error', () => handlers.error?.(err));
    else warnProcess(err);
  });
  const errorGuard = new CallbackGuard(warnProcess);
  const reportError = (err: Error): void => {
    if (handlers.error) errorGuard.run(prefix, 'error', () => handlers.error?.(err));
  };
  let delivered: DeliveredRevision | undefined;
  let resolveReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));
  const quarantined = new Map<string, CorruptRecordError>();
  /** Ends the current watch with an error, so the loop below re-lists. */
  let failWatch: (err: Error) => void = () => undefined;

  /** The decoded value, or undefined for a corrupt record (reported once per version). */
  const decodeValue = (value: Buffer, key: string, modRevision: string): T | undefined => {
    try {
      const decoded = options.decode(value, key, modRevision);
      if (quarantined.size > 0) quarantined.delete(key);
      return decoded;
    } catch (err) {
      const corrupt =
        err instanceof CorruptRecordError ? err : new CorruptRecordError(options.kind ?? 'job', key, (err as Error).message, modRevision);
      if (quarantined.get(key)?.modRevision !== modRevision) {
        quarantined.set(key, corrupt);
        // A reporting bug must not stop the informer.
        guard.run(key, 'corrupt', () => handlers.corrupt?.(corrupt));
      }
      return undefined;
    }
  };

  const onData = (res: IWatchResponse): void => {
    if (res.events.length === 0) return;
    const events = res.events.map((e): WatchEvent<T> => {
      const key = e.kv.key.toString();
      if (e.type === 'Delete') quarantined.delete(key);
      const value = e.type === 'Delete' ? undefined : decodeValue(e.kv.value, key, e.kv.mod_revision);
      return {
        // A corrupt put reaches the consumer as a delete: it must not keep acting on the key's older value.
        type: value === undefined ? 'delete' : 'put',
        key,
        value,
        modRevision: e.kv.mod_revision,
        createRevision: e.kv.create_revision,
      };
    });
    // This runs inside etcd3's stream handler, where an exception would be rethrown asynchronously
    // and kill the process: a consumer that fails is reported and re-lists (its state may be half-applied).
    try {
      handlers.events(events, res.header.revision);
    } catch (err) {
      const failure = new WatchCallbackError(events[0].key, 'events', err);
      guard.failed(failure);
      failWatch(failure);
      return;
    }
    delivered = { revision: BigInt(events[events.length - 1].modRevision), at: performance.now() };
  };

  /**
   * Lists the prefix in pages, all read at the revision of the first, and
   * hands the list to `reset`. The raw pages and the list itself live only in
   * this call: the long-running loop below must not keep them reachable for
   * as long as its watch runs.
   */
  const relist = async (): Promise<string | undefined> => {
    const items: Versioned<T>[] = [];
    const stillCorrupt = new Set<string>();
    const { revision } = await store.scanKeyValues(
      prefix,
      (kvs) => {
        for (const kv of kvs) {
          const key = kv.key.toString();
          const value = decodeValue(kv.value, key, kv.mod_revision);
          if (value === undefined) {
            stillCorrupt.add(key);
            continue;
          }
          if (options.keepListed && !options.keepListed(value)) continue;
          items.push({ key, value, modRevision: kv.mod_revision, createRevision: kv.create_revision });
        }
      },
      { pageSize: options.pageSize ?? DEFAULT_PAGE_SIZE },
    );
    if (stopped) return undefined;
    for (const key of quarantined.keys()) if (!stillCorrupt.has(key)) quarantined.delete(key);
    try {
      handlers.reset(items, revision);
    } catch (err) {
      // Reported here, and the list is tried again after a wait.
      const failure = new WatchCallbackError(prefix, 'reset', err);
      guard.failed(failure);
      throw failure;
    }
    delivered = { revision: BigInt(revision), at: performance.now() };
    return revision;
  };

  /** Lists, then watches from the list's revision + 1; undefined once stopped. */
  const listAndWatch = async (): Promise<Watcher | undefined> => {
    const revision = await relist();
    if (revision === undefined) return undefined;
    resolveReady();
    const w = await store.client
      .watch()
      .prefix(prefix)
      .startRevision(String(BigInt(revision) + 1n))
      .create();
    if (stopped) {
      await cancelWatcher(w);
      return undefined;
    }
    return w;
  };

  const run = async (): Promise<void> => {
    while (!stopped) {
      // Every failure of a list or of a watch's start is retried, for as long as the informer runs.
      const w = await retryCall(listAndWatch, {
        retryable: () => true,
        initialDelayMs: RELIST_FIRST_DELAY_MS,
        maxDelayMs: RELIST_MAX_DELAY_MS,
        signal: stopping.signal,
        onRetry: (err) => {
          // A handler's failure was reported by the guard already.
          if (!(err instanceof WatchCallbackError)) reportError(err as Error);
        },
      }).catch(() => undefined);
      if (!w) return;
      watcher = w;
      const failed = new Promise<Error>((resolve) => {
        failWatch = resolve;
        w.once('error', resolve);
      });
      w.on('data', onData);
      const err = await failed;
      watcher = undefined;
      w.removeListener('data', onData);
      await cancelWatcher(w);
      if (stopped) return;
      // Straight to a re-list: the watch was up, this is no repeated failure.
      if (!(err instanceof WatchCallbackError)) reportError(err);
    }
  };
  void run();

  return {
    ready,
    delivered: () => delivered,
    quarantined: () => quarantined,
    callbackFailures: () => guard.count() + errorGuard.count(),
    async stop() {
      stopped = true;
      stopping.abort();
      resolveReady();
      if (watcher) await cancelWatcher(watcher);
    },
  };
}
