import { StringDecoder } from 'node:string_decoder';
import type { LogMarks, LogStream } from '../../pkg/model/index.js';
import { compareDockerTime } from './docker-time.js';
import type { OutputHandler } from './executor.js';

/** Header of one frame of Docker's multiplexed (non-TTY) stream: stream type, 3 zero bytes, payload length. */
const HEADER_BYTES = 8;

/**
 * Turns Docker's multiplexed log stream, read with `timestamps: true`, into
 * output calls that carry each message's timestamp: one call per message,
 * even when its text is empty for now (a character split across frames), so
 * the sink counts messages exactly as Docker does. Docker writes one frame
 * per log message with the timestamp first, so the frame — not the newline —
 * is the unit: a line longer than Docker's 16 KiB buffer arrives as several
 * frames that all carry the line's first timestamp.
 *
 * Messages already stored (per stream: before the mark's timestamp, or among
 * the first `count` at it) are dropped, which is what makes a re-attached log
 * continue with no duplicate and no gap. Docker keeps each stream in time
 * order, but not stdout and stderr against each other: hence one mark each.
 */
export class TimestampedLogReader {
  private pending: Buffer = Buffer.alloc(0);
  private readonly decoders: Record<LogStream, StringDecoder> = {
    stdout: new StringDecoder('utf8'),
    stderr: new StringDecoder('utf8'),
  };
  private readonly lastTs: Partial<Record<LogStream, string>> = {};
  /** Messages seen at exactly the mark's timestamp, per stream. */
  private readonly atMark: Record<LogStream, number> = { stdout: 0, stderr: 0 };

  constructor(
    private readonly output: OutputHandler,
    private readonly after: LogMarks = {},
  ) {}

  push(data: Buffer): void {
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    let offset = 0;
    while (this.pending.length - offset >= HEADER_BYTES) {
      const length = this.pending.readUInt32BE(offset + 4);
      if (this.pending.length - offset - HEADER_BYTES < length) break;
      const stream: LogStream = this.pending[offset] === 2 ? 'stderr' : 'stdout';
      this.frame(stream, this.pending.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length));
      offset += HEADER_BYTES + length;
    }
    this.pending = this.pending.subarray(offset);
  }

  /** Hands over a character split across the last frames, if any. */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.decoders[stream].end();
      if (rest) this.output(stream, rest, this.lastTs[stream]);
    }
  }

  private frame(stream: LogStream, payload: Buffer): void {
    const space = payload.indexOf(0x20);
    // Every frame starts with "<timestamp> "; one without is passed on whole rather than lost.
    const ts = space > 0 ? payload.subarray(0, space).toString('latin1') : undefined;
    const body = ts === undefined ? payload : payload.subarray(space + 1);
    if (ts !== undefined && this.stored(stream, ts)) return;
    const text = this.decoders[stream].write(body);
    if (ts !== undefined) this.lastTs[stream] = ts;
    if (text || ts !== undefined) this.output(stream, text, ts);
  }

  private stored(stream: LogStream, ts: string): boolean {
    const mark = this.after[stream];
    if (!mark) return false;
    const order = compareDockerTime(ts, mark.ts);
    if (order !== 0) return order < 0;
    return ++this.atMark[stream] <= mark.count;
  }
}
