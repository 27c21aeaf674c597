import type { IWatchResponse, Watcher } from 'etcd3';
import { decode } from './codec.js';
import { cancelWatcher } from './watch.js';
import type { Store } from './store.js';
import type { Versioned, WatchEvent } from './versioned.js';

export interface InformerHandlers<T> {
  /** The full current list; replaces whatever the consumer cached. */
  reset(items: Versioned<T>[], revision: string): void;
  /** Changes after the list, in revision order, one batch per watch response. */
  events(events: WatchEvent<T>[], revision: string): void;
  /** A watch failed and a re-list is about to happen (logging only). */
  error?(err: Error): void;
}

export interface Informer {
  /** Resolves once the first list was delivered. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

const RELIST_BACKOFF_MS = [100, 250, 500, 1000, 2000, 5000];

/**
 * List-then-watch of one key prefix, the way a cache must follow etcd: watch
 * from the list's revision + 1; when the watch is cancelled (compaction) or
 * fails, re-list and start again, so no event is ever silently missed.
 */
export function startInformer<T>(store: Store, prefix: string, handlers: InformerHandlers<T>): Informer {
  let watcher: Watcher | undefined;
  let stopped = false;
  let resolveReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));

  const onData = (res: IWatchResponse): void => {
    if (res.events.length === 0) return;
    const events = res.events.map(
      (e): WatchEvent<T> => ({
        type: e.type === 'Delete' ? 'delete' : 'put',
        key: e.kv.key.toString(),
        value: e.type === 'Delete' ? undefined : decode<T>(e.kv.value),
        modRevision: e.kv.mod_revision,
        createRevision: e.kv.create_revision,
      }),
    );
    handlers.events(events, res.header.revision);
  };

  const run = async (): Promise<void> => {
    for (let failures = 0; !stopped; failures++) {
      try {
        const { items, revision } = await store.list<T>(prefix);
        if (stopped) return;
        handlers.reset(items, revision);
        resolveReady();
        const w = await store.client
          .watch()
          .prefix(prefix)
          .startRevision(String(BigInt(revision) + 1n))
          .create();
        if (stopped) {
          await cancelWatcher(w);
          return;
        }
        watcher = w;
        const failed = new Promise<Error>((resolve) => w.once('error', resolve));
        w.on('data', onData);
        const err = await failed;
        watcher = undefined;
        w.removeListener('data', onData);
        await cancelWatcher(w);
        if (stopped) return;
        handlers.error?.(err);
        failures = 0;
      } catch (err) {
        if (stopped) return;
        handlers.error?.(err as Error);
        await sleep(RELIST_BACKOFF_MS[Math.min(failures, RELIST_BACKOFF_MS.length - 1)]);
      }
    }
  };
  void run();

  return {
    ready,
    async stop() {
      stopped = true;
      resolveReady();
      if (watcher) await cancelWatcher(watcher);
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
