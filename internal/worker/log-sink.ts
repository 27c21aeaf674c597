import type { LogChunk, LogEntry, LogStream } from '../../pkg/model/index.js';

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
}

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

/**
 * Batches one attempt's output into LogChunks. Entries from both streams
 * share one queue, so chunks keep the order the job wrote them. One write is
 * in flight at a time and seq counts 0, 1, 2… in write order.
 */
export class LogSink {
  private readonly options: LogSinkOptions;
  private queue: LogEntry[] = [];
  private queuedBytes = 0;
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
  }

  get fenced(): boolean {
    return this.fencedFlag;
  }

  /** Chunks written (or attempted) so far. */
  get chunksWritten(): number {
    return this.seq;
  }

  push(stream: LogStream, data: string): void {
    if (this.closed || this.fencedFlag || this.truncated || data.length === 0) return;
    const room = this.options.maxBytes - this.acceptedBytes;
    const [kept, dropped] = splitUtf8(data, room);
    this.enqueue(stream, kept);
    this.acceptedBytes += Buffer.byteLength(kept);
    if (dropped.length > 0) {
      this.truncated = true;
      this.enqueue('stderr', `[titan] log truncated: output exceeded ${formatBytes(this.options.maxBytes)}\n`);
    }
    if (this.timer === undefined && !this.due) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.due = this.queue.length > 0;
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
        if (this.queue.length === 0 || this.fencedFlag) return;
        this.startDrain();
      }
      await this.draining;
    }
  }

  private enqueue(stream: LogStream, data: string): void {
    if (data.length === 0) return;
    const last = this.queue[this.queue.length - 1];
    // Adjacent output of one stream is one entry: fewer, larger entries.
    if (last !== undefined && last.stream === stream) last.data += data;
    else this.queue.push({ stream, data });
    this.queuedBytes += Buffer.byteLength(data);
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
      if (this.queue.length > 0 && (this.due || this.queuedBytes >= this.options.chunkBytes)) this.startDrain();
    });
  }

  private async drain(): Promise<void> {
    while (!this.fencedFlag && this.queue.length > 0 && (this.due || this.queuedBytes >= this.options.chunkBytes)) {
      const chunk = { seq: this.seq++, entries: this.take(this.options.chunkBytes) };
      await this.writeWithRetry(chunk);
    }
  }

  /** Removes up to maxBytes of entries from the queue head, splitting the last one if needed. */
  private take(maxBytes: number): LogEntry[] {
    const entries: LogEntry[] = [];
    let size = 0;
    while (this.queue.length > 0 && size < maxBytes) {
      const head = this.queue[0];
      const [part, rest] = splitUtf8(head.data, maxBytes - size);
      // A single character wider than the room left still has to go somewhere.
      const taken = part.length > 0 || entries.length > 0 ? part : head.data;
      if (taken.length === 0) break;
      entries.push({ stream: head.stream, data: taken });
      size += Buffer.byteLength(taken);
      if (taken === head.data) this.queue.shift();
      else head.data = rest;
    }
    this.queuedBytes -= size;
    if (this.queue.length === 0) {
      // The next output starts a fresh flush window.
      this.due = this.closed;
      this.clearTimer();
    }
    return entries;
  }

  private async writeWithRetry(chunk: LogChunk): Promise<void> {
    const delays = this.degraded ? [] : (this.options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS);
    for (let attempt = 0; ; attempt++) {
      try {
        // Re-writing the same seq is idempotent: it is the same key and value.
        const stored = await this.options.write(chunk);
        this.degraded = false;
        if (!stored) this.fence();
        return;
      } catch (err) {
        this.degraded = attempt >= delays.length;
        if (attempt >= delays.length) {
          this.options.onError?.(err, chunk.seq);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, delays[attempt]));
      }
    }
  }

  private fence(): void {
    if (this.fencedFlag) return;
    this.fencedFlag = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.clearTimer();
    this.options.onFenced?.();
  }
}
