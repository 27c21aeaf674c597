import type { Logger } from 'pino';
import type { ApiToken, Assignment, Job, NodeInfo, Queue } from '../../pkg/model/index.js';
import { byAge } from '../../pkg/model/job-query.js';
import { records, startInformer, type Informer, type LeaderInfo, type RecordCodec, type Store, type Versioned, type WatchEvent } from '../../pkg/store/index.js';
import type { Keys } from '../../pkg/store/keys.js';

/** What the API follows; a blocking read waits on the topics its answer is made of. */
export const TOPICS = ['jobs', 'nodes', 'assignments', 'queues', 'tokens', 'leader'] as const;
export type Topic = (typeof TOPICS)[number];

/** The keys each topic is: a collection's prefix, or the leader key alone. */
const PREFIX: Record<Topic, (keys: Keys) => string> = {
  jobs: (k) => k.collection('jobs'),
  nodes: (k) => k.collection('nodes'),
  assignments: (k) => k.collection('assign'),
  queues: (k) => k.collection('queues'),
  tokens: (k) => k.collection('tokens'),
  leader: (k) => k.leader(),
};

/** Longest a write's answer waits for the cache to show it (the watch brings it in milliseconds). */
export const WRITE_SETTLE_MS = 5000;

/** How stale a shared answer a blocking read may take (see ApiCache.shared). */
export const SHARED_FRESH_MS = 1000;

/** Distinct answers kept (queries × token scopes): enough for every dashboard view of many teams. */
const MAX_SHARED_ANSWERS = 512;

interface Waiter {
  topics: readonly Topic[];
  index: bigint;
  wake: () => void;
}

/**
 * The API's view of the cluster: every job, node, assignment, queue and
 * token, each kept by an informer (list, then watch from the list's
 * revision), so reads never touch etcd and a revoked token stops working as
 * soon as its delete is seen. The index of a topic is the newest revision
 * delivered for it: blocking reads (`?index=N`) wait until it passes N.
 */
export class ApiCache {
  readonly jobs = new Map<string, Versioned<Job>>();
  readonly nodes = new Map<string, Versioned<NodeInfo>>();
  readonly assignments = new Map<string, Versioned<Assignment>>();
  readonly queues = new Map<string, Versioned<Queue>>();
  readonly tokens = new Map<string, Versioned<ApiToken>>();
  /** The leader key's record, under the id '' (absent while no master leads). */
  readonly leader = new Map<string, Versioned<LeaderInfo>>();
  /** The answers of shared(), least recently computed first. */
  private readonly answers = new Map<string, { index: bigint; at: number; body: Promise<string> }>();
  private readonly indexes = new Map<Topic, bigint>(TOPICS.map((t) => [t, 0n]));
  private waiters = new Set<Waiter>();
  private informers: Informer[] = [];
  /**
   * Job ids newest first; rebuilt only when a job comes or goes (an update
   * changes neither id nor creation time). Ids, not records: a record kept
   * here would go stale at the job's next update.
   */
  private jobOrder: string[] | undefined;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.informers = [
      this.follow('jobs', records.job, this.jobs),
      this.follow('nodes', records.node, this.nodes),
      this.follow('assignments', records.assignment, this.assignments),
      this.follow('queues', records.queue, this.queues),
      this.follow('tokens', records.token, this.tokens),
      this.follow('leader', records.leader, this.leader),
    ];
    await Promise.all(this.informers.map((i) => i.ready));
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
    for (const waiter of this.waiters) waiter.wake();
    this.waiters.clear();
  }

  /** The newest revision delivered for any of the topics: the `X-Titan-Index` of an answer made of them. */
  index(topics: readonly Topic[]): bigint {
    let max = 0n;
    for (const t of topics) {
      const i = this.indexes.get(t) ?? 0n;
      if (i > max) max = i;
    }
    return max;
  }

  /** Resolves once one of the topics has an index above `index`, or after `timeoutMs` (whichever first), or on `signal`. */
  waitFor(topics: readonly Topic[], index: bigint, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.index(topics) > index || timeoutMs <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter: Waiter = { topics, index, wake: () => done() };
      const timer = setTimeout(() => done(), timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiters.delete(waiter);
        resolve();
      };
      signal?.addEventListener('abort', done);
      this.waiters.add(waiter);
    });
  }

  /**
   * One answer per (key, index), shared: the clients of a blocking read wake
   * together at a new index, and the first computes and serializes the
   * answer while the rest wait for the same promise. While the cluster
   * changes without pause, a blocking read (one that gives `after`, the
   * index it has seen) is answered from an answer at most SHARED_FRESH_MS
   * old when that is newer than what it has, and otherwise waits until the
   * held answer is that old before a new one is made: each answer is
   * computed at most about once per SHARED_FRESH_MS, however many clients
   * ask and whenever they come back. A plain read always gets the current
   * index (read-your-writes).
   */
  async shared(key: string, topics: readonly Topic[], compute: () => Promise<string> | string, after?: bigint): Promise<{ index: bigint; body: string }> {
    let held = this.answers.get(key);
    if (after !== undefined && held && held.index <= after && this.index(topics) > after) {
      const wait = held.at + SHARED_FRESH_MS - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      held = this.answers.get(key);
    }
    const index = this.index(topics);
    const now = performance.now();
    const usable = held && (held.index === index || (after !== undefined && held.index > after && now - held.at < SHARED_FRESH_MS));
    const answer = usable && held ? held : { index, at: now, body: Promise.resolve().then(compute) };
    if (answer !== held) {
      // A failed answer is not kept: the next call computes again.
      answer.body.catch(() => this.answers.get(key) === answer && this.answers.delete(key));
      this.answers.delete(key);
      this.answers.set(key, answer);
      if (this.answers.size > MAX_SHARED_ANSWERS) this.answers.delete(this.answers.keys().next().value as string);
    }
    return { index: answer.index, body: await answer.body };
  }

  /**
   * Read-your-writes: a write's answer waits (at most `timeoutMs`) until
   * the cache shows it, so a read right after it (this client's, or the
   * dashboard's) sees what was written. `done` says whether it does.
   */
  async settle(topic: Topic, done: () => boolean, timeoutMs = WRITE_SETTLE_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done() && Date.now() < deadline) await this.waitFor([topic], this.index([topic]), deadline - Date.now());
  }

  /** The mod revisions the cache holds now of these ids (absent: undefined), to settle on after a write. */
  versionsOf<T>(records: ReadonlyMap<string, Versioned<T>>, ids: readonly string[]): Map<string, string | undefined> {
    return new Map(ids.map((id) => [id, records.get(id)?.modRevision]));
  }

  /** Whether the cache holds, for every id, another version than `before`. */
  changed<T>(records: ReadonlyMap<string, Versioned<T>>, before: ReadonlyMap<string, string | undefined>): boolean {
    for (const [id, revision] of before) {
      const now = records.get(id)?.modRevision;
      if (now === undefined || now === revision) return false;
    }
    return true;
  }

  /** Every job as it is now, newest first. */
  *jobsNewestFirst(): Generator<Versioned<Job>> {
    this.jobOrder ??= [...this.jobs].sort(([, a], [, b]) => byAge(a.value, b.value)).map(([key]) => key);
    for (const id of this.jobOrder) {
      const job = this.jobs.get(id);
      if (job) yield job;
    }
  }

  /** Records the informers quarantined, by topic (for /healthz). */
  quarantined(): Record<Topic, number> {
    return Object.fromEntries(TOPICS.map((t, i) => [t, this.informers[i]?.quarantined().size ?? 0])) as Record<Topic, number>;
  }

  private follow<T>(topic: Topic, codec: RecordCodec<T>, into: Map<string, Versioned<T>>): Informer {
    const prefix = PREFIX[topic](this.store.keys);
    const idOf = (key: string): string => key.slice(prefix.length);
    return startInformer<T>(
      this.store,
      prefix,
      {
        reset: (items, revision) => {
          into.clear();
          for (const item of items) into.set(idOf(item.key), item);
          if (topic === 'jobs') this.jobOrder = undefined;
          this.advance(topic, BigInt(revision));
        },
        events: (events: WatchEvent<T>[], revision) => {
          for (const e of events) {
            const id = idOf(e.key);
            if (e.type === 'delete' || e.value === undefined) {
              if (into.delete(id) && topic === 'jobs') this.jobOrder = undefined;
            } else {
              if (!into.has(id) && topic === 'jobs') this.jobOrder = undefined;
              into.set(id, { key: e.key, value: e.value, modRevision: e.modRevision, createRevision: e.createRevision });
            }
          }
          this.advance(topic, BigInt(revision));
        },
        error: (err) => this.logger.warn({ err, topic }, 'API cache watch failed; re-listing'),
        corrupt: (err) => this.logger.warn({ err, topic }, 'API cache skipped a corrupt record (see titan doctor)'),
      },
      { decode: codec.decode, kind: codec.kind },
    );
  }

  private advance(topic: Topic, revision: bigint): void {
    if (revision > (this.indexes.get(topic) ?? 0n)) this.indexes.set(topic, revision);
    for (const waiter of [...this.waiters]) {
      if (waiter.topics.includes(topic) && this.index(waiter.topics) > waiter.index) waiter.wake();
    }
  }
}
