import type { IWatchResponse, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { TitanError } from '../../pkg/model/errors.js';
import type { Job } from '../../pkg/model/job.js';
import type { NodeInfo } from '../../pkg/model/node.js';
import { queueOf, type Queue } from '../../pkg/model/queue.js';
import { CorruptRecordError, records, type RecordCodec } from '../../pkg/store/codec.js';
import { isCompactedError, isFutureRevisionError } from '../../pkg/store/errors.js';
import type { Store } from '../../pkg/store/store.js';
import { CallbackGuard, cancelWatcher, WatchCallbackError } from '../../pkg/store/watch.js';

/** What /v1/events reports changes of (never tokens, assignments or logs). */
export const EVENT_TOPICS = ['jobs', 'nodes', 'queues'] as const;
export type EventTopic = (typeof EVENT_TOPICS)[number];

/** One change of one record, as decoded by its codec. */
export interface ChangeEvent {
  type: 'put' | 'delete';
  topic: EventTopic;
  /** The job or node id, the queue name. */
  id: string;
  revision: string;
  /** Puts: the record now. */
  value?: Job | NodeInfo | Queue;
  /** Jobs: the job's queue (of the value, or of the value before a delete), for queue-scoped readers; undefined when unknown. */
  queue?: string;
}

/** The changes one etcd revision (one transaction) made, in its order. */
export interface RevisionChanges {
  revision: bigint;
  events: ChangeEvent[];
}

export interface ChangeSink {
  changes(batches: readonly RevisionChanges[]): void;
  /** The feed broke (etcd cancelled its watch): nothing more comes; the client resumes from its last id. */
  broken(err: TitanError): void;
}

export interface Subscription {
  /** The first revision delivered (earlier ones are not). */
  from: bigint;
  close(): void;
}

export interface ChangeFeedOptions {
  /** Revisions with changes the shared watch keeps, so a client that reconnects resumes from memory. */
  keptRevisions?: number;
  /** How long the shared watch stays after its last subscriber leaves. */
  lingerMs?: number;
}

const DEFAULT_KEPT_REVISIONS = 4096;
const DEFAULT_LINGER_MS = 60_000;

const CODEC: Record<EventTopic, RecordCodec<Job | NodeInfo | Queue>> = { jobs: records.job, nodes: records.node, queues: records.queue };

interface ChangeWatch {
  cancel(): Promise<void>;
}

/**
 * One watch of every key of the cluster from a revision, its responses
 * turned into the changes of the event topics. One watch, not one per
 * topic: etcd orders events within a watch only, and the stream must be in
 * revision order for Last-Event-ID to resume it exactly. With the previous
 * value, so a deleted job's queue is known. Everything in the handler is
 * guarded: an exception there would be rethrown by etcd3 and kill the process.
 */
async function startChangeWatch(
  store: Store,
  from: bigint,
  logger: Logger,
  guard: CallbackGuard,
  onChanges: (batches: RevisionChanges[], lastRevision: bigint) => void,
  onBroken: (err: TitanError) => void,
): Promise<ChangeWatch> {
  const prefixes = EVENT_TOPICS.map((topic) => [topic, store.keys.collection(topic)] as const);
  let watcher: Watcher;
  try {
    watcher = await store.client.watch().prefix(store.keys.all()).withPreviousKV().startRevision(String(from)).create();
  } catch (err) {
    throw brokenError(err);
  }
  let done = false;
  const stop = (err: TitanError): void => {
    if (done) return;
    done = true;
    void cancelWatcher(watcher);
    onBroken(err);
  };
  watcher.on('data', (res: IWatchResponse) => {
    if (done) return;
    let key = store.keys.all();
    try {
      const batches: RevisionChanges[] = [];
      for (const e of res.events) {
        key = e.kv.key.toString();
        const found = prefixes.find(([, prefix]) => key.startsWith(prefix));
        if (!found) continue;
        const [topic, prefix] = found;
        const id = key.slice(prefix.length);
        if (id === '' || id.includes('/')) continue;
        const change = decodeChange(topic, id, e, logger);
        if (!change) continue;
        const revision = BigInt(change.revision);
        const last = batches[batches.length - 1];
        if (last?.revision === revision) last.events.push(change);
        else batches.push({ revision, events: [change] });
      }
      const lastRevision = res.events.length > 0 ? BigInt(res.events[res.events.length - 1].kv.mod_revision) : 0n;
      onChanges(batches, lastRevision);
    } catch (err) {
      // The guard logs it with the key and counts it; the feed ends, its clients resume from their last id.
      guard.failed(new WatchCallbackError(key, 'event feed', err));
      stop(new TitanError('Internal', `the event feed failed: ${(err as Error).message}; reconnect with Last-Event-ID`));
    }
  });
  watcher.once('error', (err: Error) => stop(brokenError(err)));
  return {
    cancel: async () => {
      done = true;
      await cancelWatcher(watcher);
    },
  };
}

function brokenError(err: unknown): TitanError {
  if (isCompactedError(err)) return compactedError();
  return new TitanError('Unavailable', `the event feed's etcd watch ended (${(err as Error).message}); reconnect with Last-Event-ID`, { cause: err });
}

function compactedError(): TitanError {
  return new TitanError('Gone', 'etcd no longer has the changes since that revision (compacted): list again, then follow from the list\'s X-Titan-Index');
}

function decodeChange(topic: EventTopic, id: string, e: IWatchResponse['events'][number], logger: Logger): ChangeEvent | undefined {
  const key = e.kv.key.toString();
  const revision = e.kv.mod_revision;
  if (e.type === 'Delete') {
    let queue: string | undefined;
    if (topic === 'jobs' && e.prev_kv) {
      try {
        queue = queueOf(records.job.decode(e.prev_kv.value, key, e.prev_kv.mod_revision));
      } catch {
        // A corrupt earlier value: only readers of every queue see the delete.
      }
    }
    return { type: 'delete', topic, id, revision, ...(queue !== undefined ? { queue } : {}) };
  }
  try {
    const value = CODEC[topic].decode(e.kv.value, key, revision);
    return { type: 'put', topic, id, revision, value, ...(topic === 'jobs' ? { queue: queueOf(value as Job) } : {}) };
  } catch (err) {
    if (!(err instanceof CorruptRecordError)) throw err;
    logger.warn({ err }, 'the event feed skipped a corrupt record (see titan doctor)');
    return undefined;
  }
}

/**
 * The changes of the cluster for /v1/events. All subscribers share one
 * watch (started with the first, kept a while after the last leaves), which
 * keeps its latest revisions so a reconnecting client resumes from memory.
 * A client resuming from before what it keeps gets a watch of its own from
 * its revision, unless etcd compacted that away (Gone: the client lists again).
 */
export class ChangeFeed {
  private watch: ChangeWatch | undefined;
  private starting: Promise<void> | undefined;
  /** Every change after this revision is in `kept` or still to come. */
  private floor = 0n;
  /** The newest revision the shared watch has seen (of any key). */
  private head = 0n;
  private kept: RevisionChanges[] = [];
  private readonly subscribers = new Set<ChangeSink>();
  private readonly own = new Set<ChangeWatch>();
  private linger: NodeJS.Timeout | undefined;
  private readonly keptRevisions: number;
  private readonly lingerMs: number;
  private stopped = false;
  /** Watch responses the feed failed on, and subscribers that threw on a change. */
  private readonly guard: CallbackGuard;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    options: ChangeFeedOptions = {},
  ) {
    this.keptRevisions = options.keptRevisions ?? DEFAULT_KEPT_REVISIONS;
    this.lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
    this.guard = new CallbackGuard((err) => this.logger.error({ err, key: err.key }, 'the event feed failed on a watch response'));
  }

  /** Watch responses the feed failed on: each was logged with its key and ended that watch (its clients resume). */
  callbackFailures(): number {
    return this.guard.count();
  }

  /** Watches of etcd this feed holds now (the shared one and clients' own): none once every client left and the linger passed. */
  watchCount(): number {
    return (this.watch ? 1 : 0) + this.own.size;
  }

  /**
   * Delivers every change from revision `from` (inclusive; default: after
   * the newest the feed has seen). Throws, before delivering anything, Gone
   * for a compacted revision and InvalidInput for a future one.
   */
  async subscribe(from: bigint | undefined, sink: ChangeSink): Promise<Subscription> {
    if (this.stopped) throw new TitanError('Unavailable', 'the API is shutting down');
    await this.start();
    if (from !== undefined && from > this.head + 1n) await this.requireNotFuture(from);
    if (from === undefined || (from > this.floor && this.watch)) {
      // From here to the add, nothing awaits: no revision falls between the replay and the live changes.
      const start = from ?? this.head + 1n;
      const replay = this.kept.filter((b) => b.revision >= start);
      if (replay.length > 0) sink.changes(replay);
      this.subscribers.add(sink);
      this.clearLinger();
      return { from: start, close: () => this.leave(sink) };
    }
    await this.requireKept(from);
    let watch: ChangeWatch | undefined;
    let closed = false;
    watch = await startChangeWatch(
      this.store,
      from,
      this.logger,
      this.guard,
      (batches) => {
        if (!closed && batches.length > 0) sink.changes(batches);
      },
      (err) => {
        if (watch) this.own.delete(watch);
        if (!closed) sink.broken(err);
      },
    );
    this.own.add(watch);
    return {
      from,
      close: () => {
        closed = true;
        if (!watch) return;
        this.own.delete(watch);
        void watch.cancel();
        watch = undefined;
      },
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clearLinger();
    const watches = [this.watch, ...this.own];
    this.watch = undefined;
    this.own.clear();
    this.subscribers.clear();
    this.kept = [];
    await Promise.all(watches.map((w) => w?.cancel()));
  }

  private start(): Promise<void> {
    if (this.watch) return Promise.resolve();
    this.starting ??= (async () => {
      try {
        const revision = BigInt(await this.store.currentRevision());
        this.floor = revision;
        this.head = revision;
        this.kept = [];
        this.watch = await startChangeWatch(
          this.store,
          revision + 1n,
          this.logger,
          this.guard,
          (batches, lastRevision) => this.onChanges(batches, lastRevision),
          (err) => this.onBroken(err),
        );
        if (this.stopped) await this.watch.cancel();
      } finally {
        this.starting = undefined;
      }
    })();
    return this.starting;
  }

  private onChanges(batches: RevisionChanges[], lastRevision: bigint): void {
    if (lastRevision > this.head) this.head = lastRevision;
    if (batches.length === 0) return;
    this.kept.push(...batches);
    if (this.kept.length > this.keptRevisions) {
      const dropped = this.kept.splice(0, this.kept.length - this.keptRevisions);
      this.floor = dropped[dropped.length - 1].revision;
    }
    for (const sink of [...this.subscribers]) {
      try {
        sink.changes(batches);
      } catch (err) {
        // One client's failure is its own: the others go on.
        this.logger.warn({ err }, 'an event stream failed');
        this.leave(sink);
      }
    }
  }

  private onBroken(err: TitanError): void {
    this.watch = undefined;
    this.kept = [];
    const sinks = [...this.subscribers];
    this.subscribers.clear();
    this.clearLinger();
    for (const sink of sinks) sink.broken(err);
  }

  private leave(sink: ChangeSink): void {
    if (!this.subscribers.delete(sink) || this.subscribers.size > 0 || !this.watch) return;
    this.clearLinger();
    this.linger = setTimeout(() => {
      this.linger = undefined;
      if (this.subscribers.size > 0 || !this.watch) return;
      const watch = this.watch;
      this.watch = undefined;
      this.kept = [];
      void watch.cancel();
    }, this.lingerMs);
    this.linger.unref();
  }

  private clearLinger(): void {
    if (this.linger !== undefined) clearTimeout(this.linger);
    this.linger = undefined;
  }

  /** `from` must be at most one past etcd's current revision (the next change). */
  private async requireNotFuture(from: bigint): Promise<void> {
    const current = BigInt(await this.store.currentRevision());
    if (from > current + 1n) throw new TitanError('InvalidInput', `since: revision ${from - 1n} is newer than etcd's current revision ${current}`, { field: 'since' });
  }

  /** Gone when etcd compacted revision `from` away. */
  private async requireKept(from: bigint): Promise<void> {
    try {
      await this.store.client.kv.range({ key: Buffer.from(this.store.keys.leader()), count_only: true, revision: String(from) });
    } catch (err) {
      if (isCompactedError(err)) throw compactedError();
      if (isFutureRevisionError(err)) return; // the next revision: nothing to miss
      throw err;
    }
  }
}
