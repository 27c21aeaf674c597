import fs from 'node:fs';
import type { LogChunk } from '../../pkg/model/index.js';
import { records, startInformer, type Informer, type Store } from '../../pkg/store/index.js';

/**
 * The host's offset between the wall clock (Date.now) and the kernel's
 * uptime as /proc/uptime shows it (centiseconds, truncated). Containers share
 * the kernel, so a container reading /proc/uptime reads the same clock. The
 * truncation makes wall - uptime too large by up to 10 ms; the smallest value
 * over samples spanning several ticks is the closest to the truth.
 */
export async function uptimeOffsetMs(samplesMs = 60): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  const until = Date.now() + samplesMs;
  while (Date.now() < until) {
    const up = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    best = Math.min(best, Date.now() - up * 1000);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return best;
}

/** One job attempt's log chunks as they land in etcd, each seen once, with its arrival time. */
export class ChunkFollower {
  private readonly seen = new Set<number>();
  private informer: Informer | undefined;
  bytes = 0;
  lastArrival = 0;

  constructor(
    private readonly store: Store,
    private readonly nodeId: string,
    private readonly jobId: string,
    private readonly attempt: number,
    private readonly onChunk?: (chunk: LogChunk, arrivedAt: number) => void,
  ) {}

  start(): Promise<void> {
    const take = (chunk: LogChunk | undefined): void => {
      if (!chunk || this.seen.has(chunk.seq)) return;
      const now = Date.now();
      this.seen.add(chunk.seq);
      for (const entry of chunk.entries) this.bytes += Buffer.byteLength(entry.data);
      this.lastArrival = now;
      this.onChunk?.(chunk, now);
    };
    this.informer = startInformer<LogChunk>(this.store, this.store.keys.attemptLogs(this.nodeId, this.jobId, this.attempt), {
      reset: (items) => [...items].sort((a, b) => a.value.seq - b.value.seq).forEach((i) => take(i.value)),
      events: (events) => events.forEach((e) => e.type === 'put' && take(e.value)),
    }, { decode: records.logChunk.decode });
    return this.informer.ready;
  }

  /** An authoritative read of whatever the watch has not delivered yet. */
  async catchUp(): Promise<void> {
    const { chunks } = await this.store.readLogChunks(this.nodeId, this.jobId, this.attempt);
    for (const chunk of chunks) {
      if (this.seen.has(chunk.seq)) continue;
      this.seen.add(chunk.seq);
      for (const entry of chunk.entries) this.bytes += Buffer.byteLength(entry.data);
      this.lastArrival = Date.now();
      this.onChunk?.(chunk, this.lastArrival);
    }
  }

  async stop(): Promise<void> {
    await this.informer?.stop();
  }
}

/** Splits stdout entries into whole lines, per chunk arrival. */
export class LineAssembler {
  private partial = '';

  push(data: string, onLine: (line: string) => void): void {
    const text = this.partial + data;
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  }
}
