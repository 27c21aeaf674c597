import { retryCall } from '../../pkg/concurrency/call-retry.js';
import type { LogChunk, LogEntry, LogOffsets, LogStream } from '../../pkg/model/index.js';

export interface LogSinkOptions {
  /** Stores chunks (consecutive seqs) in one atomic write; false means the attempt was taken from us (fenced): stop writing. */
  write(chunks: LogChunk[]): Promise<boolean>;
  /** Output kept in total; the rest is dropped after one marker line. */
  maxBytes: number;
  /** A chunk is written once this much is buffered, and chunks never exceed it. */
  chunkBytes: number;
  /**
   * Output one write may carry when it is backed up (default 512 KiB, well
   * under etcd's 1.5 MiB request limit): a job printing fast is stored in a
   * few large transactions, not one round trip per chunk. A write carries at
   * least one chunk.
   */
  writeBytes?: number;
  /** Buffered output is written at most this long after its first byte arrived. */
  flushMs: number;
  onFenced?(): void;
  /** Output (or a note) etcd stored, per entry: the worker's log byte counter. */
  onStored?(stream: LogStream, bytes: number): void;
  /** Chunks could not be written after retries and were dropped; seq is the first of them. */
  onError?(err: unknown, seq: number): void;
  /**
   * Retries of a failed write (etcd briefly unreachable), with the call
   * retry policy's backoff (default: 5 retries, waits from about 200 ms up to
   * 2 s, some 4 s in all). After one write gave up, the next fails at once.
   */
  retry?: LogWriteRetry;
  /**
   * Once the retries are spent, keep retrying (every maxDelayMs or so) while this
   * says so: a run that goes on still needs its log, however long etcd is away.
   */
  keepTrying?(): boolean;
  /** Continue the log of an attempt that an earlier worker process began. */
  resume?: LogResume;
  /** The marker stored when maxBytes is reached (default: the per-attempt cap's); starts with TRUNCATED_PREFIX. */
  truncatedNote?: string;
}

export interface LogWriteRetry {
  retries: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

/** Where an attempt's stored log ends (from its last chunk). */
export interface LogResume {
  /** The seq of the next chunk. */
  nextSeq: number;
  /** Per stream, bytes of output already stored. */
  offsets?: LogOffsets;
  /** The log already hit its cap: nothing more is stored. */
  truncated: boolean;
}

const TRUNCATED_PREFIX = '[titan] log truncated';

/** The marker of a log cut at the per-attempt cap (worker --max-log). */
export function attemptCapNote(maxBytes: number): string {
  return `${TRUNCATED_PREFIX}: output exceeded ${formatBytes(maxBytes)}\n`;
}

/** The marker of a log cut because the job's attempts together used its budget (worker --job-log-budget). */
export function jobBudgetNote(budgetBytes: number): string {
  return `${TRUNCATED_PREFIX}: the job's attempts together reached its log budget of ${formatBytes(budgetBytes)}\n`;
}

/** Bytes of output in a set of per-stream offsets. */
export function offsetBytes(offsets: LogOffsets | undefined): number {
  return (offsets?.stdout ?? 0) + (offsets?.stderr ?? 0);
}

const DEFAULT_WRITE_RETRY: LogWriteRetry = { retries: 5, initialDelayMs: 200, maxDelayMs: 2000 };
const DEFAULT_WRITE_BYTES = 512 * 1024;

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
    ...(last.offsets !== undefined ? { offsets: last.offsets } : {}),
    truncated: lastEntry?.data.startsWith(TRUNCATED_PREFIX) === true,
  };
}

/** One piece of output waiting to be written; a note is Titan's own line, not the job's output. */
interface QueuedOutput {
  stream: LogStream;
  data: string;
  bytes: number;
  note?: boolean;
}

/**
 * Batches one attempt's output into LogChunks. Entries from both streams
 * share one queue, so chunks keep the order the job wrote them. One write is
 * in flight at a time and seq counts 0, 1, 2… in write order; a write stores
 * its chunks atomically, so the stored log never has a gap.
 *
 * Each chunk carries, per stream, the bytes of output stored so far
 * (`offsets`): a worker that re-attaches to a container skips exactly that
 * much of Docker's log, with no duplicate and no gap.
 */
export class LogSink {
  private readonly options: LogSinkOptions;
  /** Output not yet taken into a chunk, from `head` on (an index, so taking is not O(n) per item). */
  private queue: QueuedOutput[] = [];
  private head = 0;
  private queuedBytes = 0;
  /** Per stream, bytes of output taken into chunks. */
  private offsets: LogOffsets = {};
  /** Output accepted so far, measured against maxBytes. */
  private acceptedBytes = 0;
  private seq = 0;
  /** Bytes of entries in chunks that etcd stored (output and notes). */
  private stored = 0;
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
      this.offsets = { ...options.resume.offsets };
      this.truncated = options.resume.truncated;
      // What the earlier process stored counts against the cap too.
      this.acceptedBytes = offsetBytes(options.resume.offsets);
      this.stored = this.acceptedBytes;
    }
  }

  get fenced(): boolean {
    return this.fencedFlag;
  }

  /** Bytes of output (and Titan's notes) this attempt has stored: its AttemptRecord.logBytes. */
  get storedBytes(): number {
    return this.stored;
  }

  /** Chunks written (or attempted) so far. */
  get chunksWritten(): number {
    return this.seq;
  }

  /** Queues output. */
  push(stream: LogStream, data: string): void {
    if (this.closed || this.fencedFlag || this.truncated || data.length === 0) return;
    const room = Math.max(0, this.options.maxBytes - this.acceptedBytes);
    const [kept, dropped] = splitUtf8(data, room);
    const keptBytes = Buffer.byteLength(kept);
    this.enqueue(stream, kept, keptBytes);
    this.acceptedBytes += keptBytes;
    if (dropped.length > 0) {
      this.truncated = true;
      const note = this.options.truncatedNote ?? attemptCapNote(this.options.maxBytes);
      this.enqueue('stderr', note, Buffer.byteLength(note), true);
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

  private enqueue(stream: LogStream, data: string, bytes: number, note = false): void {
    if (data.length === 0) return;
    const last = this.queued > 0 ? this.queue[this.queue.length - 1] : undefined;
    // Adjacent output of one stream is one item (a note stays apart: it is not the job's output).
    if (!note && last !== undefined && !last.note && last.stream === stream) {
      last.data += data;
      last.bytes += bytes;
    } else {
      this.queue.push({ stream, data, bytes, ...(note ? { note } : {}) });
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

  private get writable(): boolean {
    return !this.fencedFlag && this.queued > 0 && (this.due || this.queuedBytes >= this.options.chunkBytes);
  }

  private async drain(): Promise<void> {
    const writeBytes = this.options.writeBytes ?? DEFAULT_WRITE_BYTES;
    while (this.writable) {
      const chunks: LogChunk[] = [];
      let bytes = 0;
      do {
        const before = this.queuedBytes;
        const entries = this.take(this.options.chunkBytes);
        bytes += before - this.queuedBytes;
        const offsets = Object.keys(this.offsets).length > 0 ? { offsets: { ...this.offsets } } : {};
        chunks.push({ seq: this.seq++, entries, ...offsets });
      } while (bytes + this.options.chunkBytes <= writeBytes && this.writable);
      await this.writeWithRetry(chunks);
    }
  }

  /** Removes up to maxBytes of output from the queue head, splitting an item (between characters) to fill the chunk. */
  private take(maxBytes: number): LogEntry[] {
    const entries: LogEntry[] = [];
    let size = 0;
    while (this.queued > 0 && size < maxBytes) {
      const item = this.queue[this.head];
      if (size + item.bytes <= maxBytes) {
        this.takeInto(entries, item, item.data, item.bytes);
        size += item.bytes;
        this.head++;
        continue;
      }
      const [part, rest] = splitUtf8(item.data, maxBytes - size);
      // A single character wider than the room left still has to go somewhere.
      const taken = part.length > 0 || entries.length > 0 ? part : item.data;
      if (taken.length === 0) break;
      const takenBytes = Buffer.byteLength(taken);
      this.takeInto(entries, item, taken, takenBytes);
      size += takenBytes;
      if (taken === item.data) {
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

  /** Adds output to a chunk's entries and, unless it is a note, to its stream's offset. */
  private takeInto(entries: LogEntry[], item: QueuedOutput, data: string, bytes: number): void {
    addEntry(entries, item.stream, data);
    if (!item.note) this.offsets[item.stream] = (this.offsets[item.stream] ?? 0) + bytes;
  }

  private async writeWithRetry(chunks: LogChunk[]): Promise<void> {
    const retry = this.options.retry ?? DEFAULT_WRITE_RETRY;
    let stored: boolean;
    try {
      // Re-writing the same seqs is idempotent: the same keys and values. Every failure is retried:
      // the run cannot do without its log, and a write etcd refuses for good fails again within seconds.
      stored = await retryCall(() => this.options.write(chunks), {
        retryable: (_err, failures) => (!this.degraded && failures <= retry.retries) || this.options.keepTrying?.() === true,
        initialDelayMs: retry.initialDelayMs,
        maxDelayMs: retry.maxDelayMs,
      });
    } catch (err) {
      this.degraded = true;
      this.options.onError?.(err, chunks[0].seq);
      return;
    }
    this.degraded = false;
    if (!stored) {
      this.fence();
      return;
    }
    for (const chunk of chunks) {
      for (const entry of chunk.entries) {
        const bytes = Buffer.byteLength(entry.data);
        this.stored += bytes;
        this.options.onStored?.(entry.stream, bytes);
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
