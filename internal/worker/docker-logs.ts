import { StringDecoder } from 'node:string_decoder';
import type { LogOffsets, LogStream } from '../../pkg/model/index.js';
import type { OutputHandler } from './executor.js';
import { splitUtf8 } from './log-sink.js';

/** Header of one frame of Docker's multiplexed (non-TTY) stream: stream type, 3 zero bytes, payload length. */
const HEADER_BYTES = 8;

/**
 * Turns Docker's multiplexed stream (attach, or logs without timestamps)
 * into text per stream. `skip` drops, per stream, that many bytes of text
 * first: the output a re-attached worker finds already stored, so its log
 * continues with no duplicate and no gap. Text is counted in UTF-8 bytes after
 * decoding, the way the log sink counts what it stores.
 */
export class DockerStreamReader {
  private pending: Buffer = Buffer.alloc(0);
  private readonly decoders: Record<LogStream, StringDecoder> = {
    stdout: new StringDecoder('utf8'),
    stderr: new StringDecoder('utf8'),
  };
  private readonly skip: Record<LogStream, number>;

  constructor(
    private readonly output: OutputHandler,
    skip: LogOffsets = {},
  ) {
    this.skip = { stdout: skip.stdout ?? 0, stderr: skip.stderr ?? 0 };
  }

  push(data: Buffer): void {
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    let offset = 0;
    // Consecutive frames of one stream are decoded together: one output call per run, not per frame.
    let runStream: LogStream | undefined;
    const parts: Buffer[] = [];
    const flush = (): void => {
      if (runStream !== undefined && parts.length > 0) this.decode(runStream, parts.length === 1 ? parts[0] : Buffer.concat(parts));
      parts.length = 0;
    };
    while (this.pending.length - offset >= HEADER_BYTES) {
      const length = this.pending.readUInt32BE(offset + 4);
      if (this.pending.length - offset - HEADER_BYTES < length) break;
      const stream: LogStream = this.pending[offset] === 2 ? 'stderr' : 'stdout';
      if (stream !== runStream) {
        flush();
        runStream = stream;
      }
      parts.push(this.pending.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length));
      offset += HEADER_BYTES + length;
    }
    flush();
    this.pending = this.pending.subarray(offset);
  }

  /** Hands over a character split across the last frames, if any. */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.decoders[stream].end();
      if (rest) this.text(stream, rest);
    }
  }

  private decode(stream: LogStream, payload: Buffer): void {
    this.text(stream, this.decoders[stream].write(payload));
  }

  private text(stream: LogStream, decoded: string): void {
    let text = decoded;
    if (text.length === 0) return;
    if (this.skip[stream] > 0) {
      const bytes = Buffer.byteLength(text);
      if (bytes <= this.skip[stream]) {
        this.skip[stream] -= bytes;
        return;
      }
      text = splitUtf8(text, this.skip[stream])[1];
      this.skip[stream] = 0;
    }
    this.output(stream, text);
  }
}
