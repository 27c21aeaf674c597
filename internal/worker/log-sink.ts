import type { LogChunk, LogEntry, LogMarks, LogStream } from '../../pkg/model/index.js';

export interface LogSinkOptions {
  /** Stores one chunk; false means the attempt was taken from us (fenced): stop writing. */
  write(chunk: LogChunk): Promise<boolean>;
  /** Output kept in total; the rest is dropped after one marker line. */
  maxBytes: number;
  /** A chunk is written once this much is buffered, and chunks never exceed it. */
  chunkBytes: number;
  /** Buffered output is written at most this long after its first byte arrived. */
  flushMs: number;
  onFenced?(): void;
  /** A chunk could not be written after retries and was dropped. */
  onError?(err: unknown, seq: number): void;
  /** Waits between retries of a failed write (etcd briefly unreachable). */
  retryDelaysMs?: readonly number[];
  /**
   * Once the retries are spent, keep retrying (every last delay) while this
   * says so: a run that goes on still needs its log, however long etcd is away.
   */
  keepTrying?(): boolean;
  /** Continue the log of an attempt that an earlier worker process began. */
  resume?: LogResume;
}

/** Where an attempt's stored log ends (from its last chunk). */
export interface LogResume {
  /** The seq of the next chunk. */
  nextSeq: number;
  /** Per stream, the last stored container message. */
  until?: LogMarks;
  /** The log already hit its cap: nothing more is stored. */
  truncated: boolean;
}

const TRUNCATED_PREFIX = '[titan] log truncated';

const DEFAULT_RETRY_DELAYS_MS = [100, 250, 500, 1000, 2000];

/** `8388608` → `8MiB`: the size as an operator would have written it. */
export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 20 && bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20}MiB`;
  if (bytes >= 2 ** 10 && bytes % 2 ** 10 === 0) return `${bytes / 2 ** 10}KiB`;
  return `${bytes} bytes`;
}

/**
 * Splits text so the head is at most `maxBytes` of UTF-8, cutting only
 * between characters (a multi-byte character is never torn in two).
 */
export function splitUtf8(text: string, maxBytes: number): [head: string, tail: string] {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return [text, ''];
  let cut = Math.max(0, maxBytes);
  while (cut > 0 && (bytes[cut] & 0xc0) === 0x80) cut--; // back off continuation bytes
  return [bytes.subarray(0, cut).toString('utf8'), bytes.subarray(cut).toString('utf8')];
}

/** The resume point after an attempt's last stored chunk (none: start from scratch). */
export function resumeAfter(last: LogChunk | undefined): LogResume {
  if (!last) return { nextSeq: 0, truncated: false };
  const lastEntry = last.entries[last.entries.length - 1];
  return {
    nextSeq: last.seq + 1,
    ...(last.until !== undefined ? { until: last.until } : {}),
    truncated: lastEntry?.data.startsWith(TRUNCATED_PREFIX) === true,
  };
}

/** One piece of output waiting to be written; `ts` is its Docker message's timestamp. */
interface QueuedOutput {
  stream: LogStream;
  data: string;
  bytes: number;
  ts?: string;
}

/**
 * Batches one attempt's output into LogChunks. Entries from both streams
 * share one queue, so chunks keep the order the job wrote them. One write is
 * in flight at a time and seq counts 0, 1, 2… in write order.
 *
 * Timestamped output (Docker messages) is kept whole where it fits, so a
 * chunk ends exactly after a message, and its `until` marks, per stream, the
 * last message stored so far: a re-attached worker resumes after the marks
 * with no duplicate and no gap. Only a single message larger than a chunk is
 * split (Docker's messages are at most 16 KiB; chunks 64 KiB by default).
 */
export class LogSink {
  private readonly options: LogSinkOptions;
  /** Output not yet taken into a chunk, from `head` on (an index, so taking is not O(n) per item). */
  private queue: QueuedOutput[] = [];
  private head = 0;
  private queuedBytes = 0;
  /** Per stream, the last whole message taken into a chunk. */
  private marks: LogMarks = {};
  /** Output accepted so far, measured against maxBytes. */
  private acceptedBytes = 0;
  private seq = 0;
  private truncated = false;
  private closed = false;
  private fencedFlag = false;
  /** The flush timer fired (or close() was called): write everything queued. */
  private due = false;
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  /** A write already gave up: do not wait out retries again until one succeeds. */
  private degraded = false;

  constructor(options: LogSinkOptions) {
    this.options = options;
    if (options.resume) {
      this.seq = options.resume.nextSeq;
      this.marks = structuredClone(options.resume.until ?? {});
      this.truncated = options.resume.truncated;
    }
  }

  get fenced(): boolean {
    return this.fencedFlag;
  }

  /** Chunks written (or attempted) so far. */
  get chunksWritten(): number {
    return this.seq;
  }

  /** Queues output; `ts` is the Docker timestamp of the message it belongs to. */
  push(stream: LogStream, data: string, ts?: string): void {
    // An empty timed message still counts: Docker's resume position is counted in messages.
    if (this.closed || this.fencedFlag || this.truncated || (data.length === 0 && ts === undefined)) return;
    const room = this.options.maxBytes - this.acceptedBytes;
    const [kept, dropped] = splitUtf8(data, room);
    this.enqueue(stream, kept, ts);
    this.acceptedBytes += Buffer.byteLength(kept);
    if (dropped.length > 0) {
      this.truncated = true;
      this.enqueue('stderr', `[titan] log truncated: output exceeded ${formatBytes(this.options.maxBytes)}\n`);
    }
    if (this.timer === undefined && !this.due) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.due = this.queued > 0;
        this.startDrain();
      }, this.options.flushMs);
    }
    if (this.queuedBytes >= this.options.chunkBytes) this.startDrain();
  }

  /** Writes everything still queued; resolves once it is stored (or fenced). Later output is ignored. */
  async close(): Promise<void> {
    this.closed = true;
    this.due = true;
    this.clearTimer();
    for (;;) {
      if (this.draining === undefined) {
        if (this.queued === 0 || this.fencedFlag) return;
        this.startDrain();
      }
      await this.draining;
    }
  }

  private get queued(): number {
    return this.queue.length - this.head;
  }

  private enqueue(stream: LogStream, data: string, ts?: string): void {
    if (data.length === 0 && ts === undefined) return;
    const bytes = Buffer.byteLength(data);
    const last = this.queued > 0 ? this.queue[this.queue.length - 1] : undefined;
    // Adjacent untimed output of one stream is one item; timed messages stay apart (chunk boundaries).
    if (ts === undefined && last !== undefined && last.ts === undefined && last.stream === stream) {
      last.data += data;
      last.bytes += bytes;
    } else {
      this.queue.push({ stream, data, bytes, ...(ts !== undefined ? { ts } : {}) });
    }
    this.queuedBytes += bytes;
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private startDrain(): void {
    if (this.draining !== undefined) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      // Output that arrived during the last write may already be due.
      if (this.queued > 0 && (this.due || this.queuedBytes >= this.options.chunkBytes)) this.startDrain();
    });
  }

  private async drain(): Promise<void> {
    while (!this.fencedFlag && this.queued > 0 && (this.due || this.queuedBytes >= this.options.chunkBytes)) {
      const entries = this.take(this.options.chunkBytes);
      const until = Object.keys(this.marks).length > 0 ? { until: structuredClone(this.marks) } : {};
      const chunk: LogChunk = { seq: this.seq++, entries, ...until };
      await this.writeWithRetry(chunk);
    }
  }

  /**
   * Removes up to maxBytes of output from the queue head. Untimed output is
   * split to fill the chunk; a timed message that does not fit starts the
   * next chunk instead, unless it alone is larger than a chunk.
   */
  private take(maxBytes: number): LogEntry[] {
    const entries: LogEntry[] = [];
    let size = 0;
    while (this.queued > 0 && size < maxBytes) {
      const item = this.queue[this.head];
      if (size + item.bytes <= maxBytes) {
        addEntry(entries, item.stream, item.data);
        size += item.bytes;
        this.taken(item);
        this.head++;
        continue;
      }
      if (item.ts !== undefined && entries.length > 0) break;
      const [part, rest] = splitUtf8(item.data, maxBytes - size);
      // A single character wider than the room left still has to go somewhere.
      const taken = part.length > 0 || entries.length > 0 ? part : item.data;
      if (taken.length === 0) break;
      addEntry(entries, item.stream, taken);
      const takenBytes = Buffer.byteLength(taken);
      size += takenBytes;
      if (taken === item.data) {
        this.taken(item);
        this.head++;
      } else {
        item.data = rest;
        item.bytes -= takenBytes;
      }
      break;
    }
    this.queuedBytes -= size;
    if (this.queued === 0) {
      this.queue = [];
      this.head = 0;
      // The next output starts a fresh flush window.
      this.due = this.closed;
      this.clearTimer();
    } else if (this.head > 1024) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return entries;
  }

  /** A whole message went into a chunk: move its stream's mark. */
  private taken(item: QueuedOutput): void {
    if (item.ts === undefined) return;
    const mark = this.marks[item.stream];
    if (mark?.ts === item.ts) mark.count++;
    else this.marks[item.stream] = { ts: item.ts, count: 1 };
  }

  private async writeWithRetry(chunk: LogChunk): Promise<void> {
    const delays = this.options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        // Re-writing the same seq is idempotent: it is the same key and value.
        const stored = await this.options.write(chunk);
        this.degraded = false;
        if (!stored) this.fence();
        return;
      } catch (err) {
        const spent = this.degraded || attempt >= delays.length;
        if (spent && this.options.keepTrying?.() !== true) {
          this.degraded = true;
          this.options.onError?.(err, chunk.seq);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, delays[Math.min(attempt, delays.length - 1)] ?? 1000));
      }
    }
  }

  private fence(): void {
    if (this.fencedFlag) return;
    this.fencedFlag = true;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    this.clearTimer();
    this.options.onFenced?.();
  }
}

/** Appends to the entry list, merging with the last entry of the same stream: fewer, larger entries. */
function addEntry(entries: LogEntry[], stream: LogStream, data: string): void {
  if (data.length === 0) return;
  const last = entries[entries.length - 1];
  if (last !== undefined && last.stream === stream) last.data += data;
  else entries.push({ stream, data });
}
