import type { IWatchResponse, Watcher } from 'etcd3';
import { TitanError, invalidInput } from '../../pkg/model/errors.js';
import { isFinal, nodeOfAttempt, type Job } from '../../pkg/model/job.js';
import type { LogChunk, LogEntry } from '../../pkg/model/logs.js';
import { CorruptRecordError, records } from '../../pkg/store/codec.js';
import { startInformer, type Informer } from '../../pkg/store/informer.js';
import type { ReadResult, Store } from '../../pkg/store/store.js';
import { settleSoon, WatchCallbackError } from '../../pkg/store/watch.js';

export interface LogsOptions {
  /** A specific attempt (1-based); default: the job's latest. */
  attempt?: number;
  /** Every entry, in order. */
  write: (entry: LogEntry) => void;
}

/** Where a reader is in a job's output: the last chunk it has of one attempt (`seq` -1: none of it yet). */
export interface LogPosition {
  attempt: number;
  seq: number;
}

interface FollowControls {
  /** Titan's own remarks while following (waiting for the job to start, a new attempt). */
  notice?: (message: string) => void;
  /** Re-read the job this often as a safety net for the watch (default 5 s). */
  pollMs?: number;
  /** Give up after this many failed re-reads in a row (default 3). */
  maxFailures?: number;
  /** How long a chunk that arrived ahead of a missing one is held back (default 500 ms). */
  reorderMs?: number;
  /** Stops following early (Ctrl-C); resolves with the job as last seen. */
  signal?: AbortSignal;
}

export interface FollowOptions extends LogsOptions, FollowControls {}

/** Following chunk by chunk, each with its attempt: what a reader that resumes (the HTTP API) needs. */
export interface FollowChunksOptions extends FollowControls {
  /** A specific attempt (1-based): the follow ends when the job moves past it. Default: the latest, and each new one. */
  attempt?: number;
  /** Resume after this chunk (the rest of its attempt first, then on as usual). */
  after?: LogPosition;
  /** Every chunk, once, in order. */
  chunk: (chunk: LogChunk, attempt: number) => void;
}

export function parseAttempt(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw invalidInput('attempt', `"${text}" is not an attempt number (1, 2, ...)`);
  return Number(text);
}

function writeChunks(chunks: readonly LogChunk[], write: (entry: LogEntry) => void): number {
  let last = -1;
  for (const chunk of chunks) {
    for (const entry of chunk.entries) write(entry);
    last = chunk.seq;
  }
  return last;
}

/** Stands in for a chunk that could not be read, where it was, so the reader sees the gap. */
function markerChunk(store: Store, err: CorruptRecordError): LogChunk {
  const { seq } = store.keys.parseLogChunk(err.key);
  return { seq, entries: [{ stream: 'stderr', data: `[titan] a log chunk could not be read and was skipped (${err.why}); see titan doctor\n` }] };
}

/** An attempt's chunks after `afterSeq`, a marker in place of each one that is corrupt. */
async function readChunks(store: Store, nodeId: string, jobId: string, attempt: number, afterSeq?: number): Promise<{ chunks: LogChunk[]; revision: string }> {
  const read: ReadResult & { chunks: LogChunk[] } = await store.readLogChunks(nodeId, jobId, attempt, afterSeq);
  if (read.corruptCount === 0) return read;
  const chunks = [...read.chunks, ...read.corrupt.map((err) => markerChunk(store, err))].sort((a, b) => a.seq - b.seq);
  return { chunks, revision: read.revision };
}

/** The output of one attempt (default: the latest) as it is now, after chunk `afterSeq`, with the job. */
export async function readAttemptLogs(store: Store, jobId: string, attempt?: number, afterSeq = -1): Promise<{ job: Job; attempt: number; chunks: LogChunk[] }> {
  const job = (await store.requireJob(jobId)).value;
  const which = attempt ?? job.attempt;
  // Output lives under the node that ran the attempt.
  const node = nodeOfAttempt(job, which);
  const chunks = which > 0 && node !== undefined ? (await readChunks(store, node, jobId, which, afterSeq)).chunks : [];
  return { job, attempt: which, chunks };
}

/** Prints the output of one attempt as it is now. Returns the job. */
export async function printLogs(store: Store, jobId: string, options: LogsOptions): Promise<Job> {
  const { job, chunks } = await readAttemptLogs(store, jobId, options.attempt);
  writeChunks(chunks, options.write);
  return job;
}

/**
 * `titan logs -f`: prints what exists, then follows the attempt's log
 * prefix (a watch from the read's revision + 1) and the job key. When the
 * job reaches a final state, reads whatever came after the last chunk
 * printed, prints it, and resolves with the final job.
 *
 * Exactly-once: the seq of the last chunk printed is tracked and anything at
 * or below it is ignored, so watch replays and the closing read never
 * duplicate a line. A chunk that arrives ahead of a missing seq is held back
 * briefly, then an authoritative range read decides. All work runs through
 * one queue, so the job and log streams never interleave mid-step.
 *
 * Following the latest attempt, a job that is requeued (a new attempt)
 * continues with the new attempt's output; a pinned --attempt ends when the
 * job moves past it.
 */
export function followLogs(store: Store, jobId: string, options: FollowOptions): Promise<Job> {
  const { write, ...controls } = options;
  return followLogChunks(store, jobId, {
    ...controls,
    chunk: (chunk) => {
      for (const entry of chunk.entries) write(entry);
    },
  });
}

/** followLogs chunk by chunk, optionally resuming after a position: the one follower of the CLI and the API. */
export function followLogChunks(store: Store, jobId: string, options: FollowChunksOptions): Promise<Job> {
  return new LogFollower(store, jobId, options).run();
}

class LogFollower {
  private readonly pinned: boolean;
  private attempt = 0;
  /** The node the followed attempt runs on: its output is stored under that node. */
  private node: string | undefined;
  /** The log watch for `attempt` is running and its existing chunks were printed. */
  private watching = false;
  private lastSeq = -1;
  private readonly held = new Map<number, LogChunk>();
  private holdTimer: NodeJS.Timeout | undefined;
  private watcher: Watcher | undefined;
  private informer: Informer | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private pollFailures = 0;
  private jobRevision = -1n;
  private lastJob: Job | undefined;
  private queue: Promise<void> = Promise.resolve();
  private finished = false;
  private resolve: (job: Job) => void = () => undefined;
  private reject: (err: unknown) => void = () => undefined;

  constructor(
    private readonly store: Store,
    private readonly jobId: string,
    private readonly options: FollowChunksOptions,
  ) {
    this.pinned = options.attempt !== undefined;
    this.attempt = options.after?.attempt ?? options.attempt ?? 0;
    this.lastSeq = options.after?.seq ?? -1;
  }

  async run(): Promise<Job> {
    const first = await this.store.requireJob(this.jobId);
    const done = new Promise<Job>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    const onAbort = (): void => this.enqueue(() => this.finish(this.lastJob ?? first.value));
    if (this.options.signal?.aborted) onAbort();
    this.options.signal?.addEventListener('abort', onAbort, { once: true });
    if (!this.pinned && first.value.attempt === 0 && !isFinal(first.value.state)) {
      this.options.notice?.(`waiting for job ${this.jobId} to start (${first.value.state})`);
    }
    this.enqueue(() => this.onJob(first.value, first.modRevision));
    this.enqueue(() => this.startJobWatch());
    try {
      return await done;
    } finally {
      this.options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Runs steps one at a time; a failing step ends the follow with its error. */
  private enqueue(step: () => Promise<void> | void): void {
    this.queue = this.queue
      .then(() => (this.finished ? undefined : step()))
      .catch((err: unknown) => this.fail(err));
  }

  private startJobWatch(): void {
    const key = this.store.keys.job(this.jobId);
    this.informer = startInformer<Job>(this.store, key, {
      reset: (items, revision) => {
        const found = items.find((i) => i.key === key);
        this.enqueue(() => this.onJob(found?.value, found?.modRevision ?? revision));
      },
      events: (events) => {
        for (const e of events) {
          if (e.key === key) this.enqueue(() => this.onJob(e.type === 'delete' ? undefined : e.value, e.modRevision));
        }
      },
    }, { decode: records.job.decode });
    this.pollTimer = setInterval(() => {
      this.store.getJob(this.jobId).then(
        (found) => {
          this.pollFailures = 0;
          if (found) this.enqueue(() => this.onJob(found.value, found.modRevision));
        },
        (err: unknown) => {
          if (++this.pollFailures >= (this.options.maxFailures ?? 3)) this.enqueue(() => this.fail(err));
        },
      );
    }, this.options.pollMs ?? 5000);
  }

  private async onJob(job: Job | undefined, modRevision: string): Promise<void> {
    const revision = BigInt(modRevision);
    if (revision < this.jobRevision) return; // an older read than what was already handled
    this.jobRevision = revision;
    if (!job) throw new TitanError('NotFound', `job ${this.jobId} was deleted`);
    this.lastJob = job;

    if (!this.pinned && job.attempt > this.attempt) {
      // The rest of the attempt followed (or resumed) comes first.
      if (this.attempt > 0) this.node = nodeOfAttempt(job, this.attempt) ?? this.node;
      if (this.watching || (this.attempt > 0 && this.node !== undefined)) await this.drain();
      if (this.watching) {
        this.options.notice?.(`job ${this.jobId} was placed again: following attempt ${job.attempt}${job.node ? ` on ${job.node}` : ''}`);
      }
      await this.stopLogWatch();
      this.attempt = job.attempt;
      this.node = undefined;
      this.lastSeq = -1;
    }
    this.node = nodeOfAttempt(job, this.attempt) ?? this.node;
    if (!this.watching && this.attempt > 0 && job.attempt >= this.attempt && this.node !== undefined) await this.startLogWatch();
    if ((this.pinned && job.attempt > this.attempt) || isFinal(job.state)) {
      if (this.watching) await this.drain();
      await this.finish(job);
    }
  }

  /** Prints the attempt's chunks after the last one printed, then watches from that read's revision + 1. */
  private async startLogWatch(): Promise<void> {
    await this.stopLogWatch();
    const node = this.node ?? '';
    const { chunks, revision } = await readChunks(this.store, node, this.jobId, this.attempt, this.lastSeq);
    this.printInOrder(chunks);
    this.watching = true;
    const attempt = this.attempt;
    const watcher = await this.store.client
      .watch()
      .prefix(this.store.keys.attemptLogs(node, this.jobId, attempt))
      .startRevision(String(BigInt(revision) + 1n))
      .create();
    if (this.finished || attempt !== this.attempt || !this.watching) {
      await settleSoon(watcher.cancel());
      return;
    }
    this.watcher = watcher;
    watcher.on('data', (res: IWatchResponse) => {
      if (this.watcher !== watcher) return;
      const chunks: LogChunk[] = [];
      let key = '';
      // Thrown here, inside etcd3's stream handler, an error would be rethrown asynchronously and end the
      // process (the API's master too): whatever fails ends this follow with the key, for the reader to see.
      try {
        for (const e of res.events) {
          if (e.type !== 'Put') continue;
          key = e.kv.key.toString();
          try {
            chunks.push(records.logChunk.decode(e.kv.value, key));
          } catch (err) {
            if (!(err instanceof CorruptRecordError)) throw err;
            chunks.push(markerChunk(this.store, err));
          }
        }
        if (chunks.length > 0) this.enqueue(() => this.onChunks(attempt, chunks));
      } catch (err) {
        const failure = new WatchCallbackError(key, 'log follow', err);
        this.enqueue(() => this.fail(failure));
      }
    });
    // A cancelled watch (compaction, permissions): catch up with a range read and watch again.
    watcher.once('error', () => {
      if (this.watcher !== watcher) return;
      this.watcher = undefined;
      void settleSoon(watcher.cancel());
      this.enqueue(async () => {
        if (this.watching && attempt === this.attempt) await this.startLogWatch();
      });
    });
  }

  private async stopLogWatch(): Promise<void> {
    const watcher = this.watcher;
    this.watcher = undefined;
    this.watching = false;
    this.clearHeld();
    if (watcher) await settleSoon(watcher.cancel());
  }

  private onChunks(attempt: number, chunks: LogChunk[]): void {
    if (attempt !== this.attempt || !this.watching) return;
    for (const chunk of chunks) {
      if (chunk.seq <= this.lastSeq) continue;
      if (this.lastSeq >= 0 && chunk.seq > this.lastSeq + 1) {
        this.held.set(chunk.seq, chunk);
        continue;
      }
      this.print(chunk);
      this.printHeldRun();
    }
    if (this.held.size > 0 && this.holdTimer === undefined) {
      // The missing chunk may never come (a gap): after a moment, let a range read decide.
      this.holdTimer = setTimeout(() => {
        this.holdTimer = undefined;
        this.enqueue(() => (this.watching && attempt === this.attempt ? this.drain() : undefined));
      }, this.options.reorderMs ?? 500);
    }
  }

  /** Prints everything of the attempt after the last chunk printed, from an authoritative read. */
  private async drain(): Promise<void> {
    const { chunks } = await readChunks(this.store, this.node ?? '', this.jobId, this.attempt, this.lastSeq);
    this.clearHeld();
    this.printInOrder(chunks);
  }

  private printInOrder(chunks: readonly LogChunk[]): void {
    for (const chunk of [...chunks].sort((a, b) => a.seq - b.seq)) if (chunk.seq > this.lastSeq) this.print(chunk);
  }

  private printHeldRun(): void {
    for (let next = this.held.get(this.lastSeq + 1); next; next = this.held.get(this.lastSeq + 1)) {
      this.held.delete(next.seq);
      this.print(next);
    }
    if (this.held.size === 0) this.clearHeld();
  }

  private print(chunk: LogChunk): void {
    this.lastSeq = chunk.seq;
    this.options.chunk(chunk, this.attempt);
  }

  private clearHeld(): void {
    this.held.clear();
    if (this.holdTimer !== undefined) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  private async cleanup(): Promise<void> {
    this.finished = true;
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.clearHeld();
    const watcher = this.watcher;
    this.watcher = undefined;
    await Promise.all([watcher ? settleSoon(watcher.cancel()) : undefined, this.informer ? settleSoon(this.informer.stop()) : undefined]);
  }

  private async finish(job: Job): Promise<void> {
    if (this.finished) return;
    await this.cleanup();
    this.resolve(job);
  }

  private async fail(err: unknown): Promise<void> {
    if (this.finished) return;
    await this.cleanup();
    this.reject(err);
  }
}
