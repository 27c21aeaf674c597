import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatBytes, LogSink, resumeAfter, splitUtf8, type LogSinkOptions } from '../../internal/worker/log-sink.js';
import type { LogChunk, LogEntry } from '../../pkg/model/index.js';

/** An in-memory store of chunks whose writes can be held open. */
function memoryWriter(opts: { hold?: boolean; result?: boolean } = {}) {
  const chunks: LogChunk[] = [];
  const pending: (() => void)[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const writes: number[] = [];
  const write = async (batch: LogChunk[]): Promise<boolean> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    if (opts.hold) await new Promise<void>((resolve) => pending.push(resolve));
    chunks.push(...structuredClone(batch));
    writes.push(batch.length);
    inFlight--;
    return opts.result ?? true;
  };
  return {
    chunks,
    /** Chunks per write, in order. */
    writes,
    write,
    release: () => pending.splice(0).forEach((r) => r()),
    get maxInFlight() {
      return maxInFlight;
    },
  };
}

function sink(write: LogSinkOptions['write'], extra: Partial<LogSinkOptions> = {}): LogSink {
  return new LogSink({ write, maxBytes: 1 << 20, chunkBytes: 1024, flushMs: 100, retry: { retries: 2, initialDelayMs: 1, maxDelayMs: 1 }, ...extra });
}

const text = (entries: LogEntry[]): string => entries.map((e) => e.data).join('');

describe('LogSink', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes one chunk flushMs after the first byte, keeping order across streams', async () => {
    const w = memoryWriter();
    const s = sink(w.write);
    s.push('stdout', 'a1\n');
    s.push('stdout', 'a2\n');
    s.push('stderr', 'b1\n');
    s.push('stdout', 'a3\n');
    await vi.advanceTimersByTimeAsync(99);
    expect(w.chunks).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(w.chunks).toEqual([
      {
        seq: 0,
        entries: [
          { stream: 'stdout', data: 'a1\na2\n' },
          { stream: 'stderr', data: 'b1\n' },
          { stream: 'stdout', data: 'a3\n' },
        ],
        offsets: { stdout: 9, stderr: 3 },
      },
    ]);
    // A later burst gets its own window and the next seq.
    s.push('stderr', 'late\n');
    await vi.advanceTimersByTimeAsync(100);
    expect(w.chunks.map((c) => c.seq)).toEqual([0, 1]);
    await s.close();
  });

  it('writes full chunks at once and never exceeds chunkBytes', async () => {
    const w = memoryWriter();
    const s = sink(w.write, { chunkBytes: 10 });
    s.push('stdout', '0123456789abcdefghij');
    s.push('stderr', 'XYZ');
    await vi.advanceTimersByTimeAsync(0);
    expect(w.chunks.map((c) => text(c.entries))).toEqual(['0123456789', 'abcdefghij']);
    await vi.advanceTimersByTimeAsync(100);
    expect(w.chunks.map((c) => c.seq)).toEqual([0, 1, 2]);
    expect(w.chunks[2].entries).toEqual([{ stream: 'stderr', data: 'XYZ' }]);
    await s.close();
  });

  it('has one write in flight at a time and close() waits for all of them', async () => {
    const w = memoryWriter({ hold: true });
    const s = sink(w.write, { chunkBytes: 4 });
    for (let i = 0; i < 10; i++) s.push(i % 2 ? 'stderr' : 'stdout', `${i}${i}${i}\n`);
    let closed = false;
    const closing = s.close().then(() => (closed = true));
    for (let i = 0; i < 20 && !closed; i++) {
      await vi.advanceTimersByTimeAsync(1);
      w.release();
    }
    await closing;
    expect(w.maxInFlight).toBe(1);
    expect(w.chunks.map((c) => c.seq)).toEqual([...Array(10).keys()]);
    expect(w.chunks.map((c) => text(c.entries)).join('')).toBe([...Array(10).keys()].map((i) => `${i}${i}${i}\n`).join(''));
    // Output after close is ignored.
    s.push('stdout', 'after');
    await vi.advanceTimersByTimeAsync(200);
    expect(w.chunks).toHaveLength(10);
  });

  it('writes a backlog several chunks at a time, up to writeBytes, in seq order', async () => {
    const w = memoryWriter({ hold: true });
    const s = sink(w.write, { chunkBytes: 4, writeBytes: 12 });
    s.push('stdout', 'aaaa'); // a full chunk: its write starts at once and is held
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 9; i++) s.push('stdout', `${i}${i}${i}${i}`);
    const closing = s.close();
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(1);
      w.release();
    }
    await closing;
    expect(w.writes).toEqual([1, 3, 3, 3]);
    expect(w.maxInFlight).toBe(1);
    expect(w.chunks.map((c) => c.seq)).toEqual([...Array(10).keys()]);
    expect(w.chunks.map((c) => c.offsets?.stdout)).toEqual([...Array(10).keys()].map((i) => 4 * (i + 1)));
  });

  it('caps the total output and adds one truncation marker', async () => {
    const w = memoryWriter();
    const s = sink(w.write, { maxBytes: 2048 });
    for (let i = 0; i < 10; i++) s.push('stdout', 'x'.repeat(500));
    s.push('stderr', 'dropped');
    await s.close();
    const entries = w.chunks.flatMap((c) => c.entries);
    const stdout = entries.filter((e) => e.stream === 'stdout').map((e) => e.data).join('');
    expect(stdout).toBe('x'.repeat(2048));
    const last = entries[entries.length - 1];
    expect(last).toEqual({ stream: 'stderr', data: '[titan] log truncated: output exceeded 2KiB\n' });
    expect(text(entries)).not.toContain('dropped');
  });

  it('output exactly at the cap is not truncated', async () => {
    const w = memoryWriter();
    const s = sink(w.write, { maxBytes: 10 });
    s.push('stdout', '0123456789');
    await s.close();
    expect(text(w.chunks.flatMap((c) => c.entries))).toBe('0123456789');
  });

  it('never splits a multi-byte character', async () => {
    const w = memoryWriter();
    const s = sink(w.write, { chunkBytes: 5 });
    s.push('stdout', 'ééééé€€');
    await s.close();
    for (const c of w.chunks) {
      expect(Buffer.byteLength(text(c.entries))).toBeLessThanOrEqual(5);
      expect(text(c.entries)).not.toContain('\ufffd');
    }
    expect(w.chunks.map((c) => text(c.entries)).join('')).toBe('ééééé€€');
  });

  it('stops writing once fenced', async () => {
    const w = memoryWriter({ result: false });
    const onFenced = vi.fn();
    const s = sink(w.write, { onFenced });
    s.push('stdout', 'one');
    await vi.advanceTimersByTimeAsync(100);
    expect(onFenced).toHaveBeenCalledTimes(1);
    expect(s.fenced).toBe(true);
    s.push('stdout', 'two');
    await s.close();
    expect(w.chunks).toHaveLength(1);
  });

  it('retries a failed write with the same seq', async () => {
    let calls = 0;
    const written: LogChunk[] = [];
    const s = sink(async (chunks) => {
      calls++;
      if (calls === 1) throw new Error('etcd unavailable');
      written.push(...chunks);
      return true;
    });
    s.push('stdout', 'hello');
    const closing = s.close();
    await vi.advanceTimersByTimeAsync(10);
    await closing;
    expect(calls).toBe(2);
    expect(written).toEqual([{ seq: 0, entries: [{ stream: 'stdout', data: 'hello' }], offsets: { stdout: 5 } }]);
  });

  it('drops a chunk after its retries and reports it', async () => {
    const onError = vi.fn();
    const s = sink(async () => {
      throw new Error('down');
    }, { onError });
    s.push('stdout', 'lost');
    const closing = s.close();
    await vi.advanceTimersByTimeAsync(10);
    await closing;
    expect(onError).toHaveBeenCalledWith(expect.any(Error), 0);
  });
});

describe('LogSink offsets (where a re-attached worker resumes)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('marks, per stream, the bytes stored up to and including each chunk, splitting anywhere between characters', async () => {
    const w = memoryWriter();
    const s = sink(w.write, { chunkBytes: 10 });
    s.push('stdout', 'aaaa\n');
    s.push('stdout', 'bbbb\n');
    s.push('stderr', 'cccc\n');
    s.push('stdout', 'dé€\n');
    await s.close();
    expect(w.chunks).toEqual([
      { seq: 0, entries: [{ stream: 'stdout', data: 'aaaa\nbbbb\n' }], offsets: { stdout: 10 } },
      // 'dé' is 3 bytes: the 3-byte '€' would overflow the chunk, and is not torn in two.
      { seq: 1, entries: [{ stream: 'stderr', data: 'cccc\n' }, { stream: 'stdout', data: 'dé' }], offsets: { stdout: 13, stderr: 5 } },
      { seq: 2, entries: [{ stream: 'stdout', data: '€\n' }], offsets: { stdout: 17, stderr: 5 } },
    ]);
  });

  it('does not count its own truncation note as output', async () => {
    const w = memoryWriter();
    const s = sink(w.write, { chunkBytes: 1024, maxBytes: 6 });
    s.push('stdout', 'abcdefgh');
    await s.close();
    expect(w.chunks).toHaveLength(1);
    expect(w.chunks[0].offsets).toEqual({ stdout: 6 });
    expect(text(w.chunks[0].entries)).toBe('abcdef[titan] log truncated: output exceeded 6 bytes\n');
  });

  it('resumes after the last stored chunk', async () => {
    const offsets = { stdout: 40, stderr: 3 };
    const resume = resumeAfter({ seq: 6, entries: [{ stream: 'stdout', data: 'x\n' }], offsets });
    expect(resume).toEqual({ nextSeq: 7, offsets, truncated: false });
    const w = memoryWriter();
    const s = sink(w.write, { resume });
    s.push('stdout', 'y\n');
    s.push('stderr', 'z\n');
    await s.close();
    expect(w.chunks).toEqual([
      {
        seq: 7,
        entries: [{ stream: 'stdout', data: 'y\n' }, { stream: 'stderr', data: 'z\n' }],
        offsets: { stdout: 42, stderr: 5 },
      },
    ]);
    expect(resumeAfter(undefined)).toEqual({ nextSeq: 0, truncated: false });
  });

  it('stores nothing more after a resumed log that was already truncated', async () => {
    const resume = resumeAfter({ seq: 3, entries: [{ stream: 'stderr', data: '[titan] log truncated: output exceeded 4KiB\n' }] });
    expect(resume.truncated).toBe(true);
    const w = memoryWriter();
    const s = sink(w.write, { resume });
    s.push('stdout', 'more');
    await s.close();
    expect(w.chunks).toHaveLength(0);
  });

  it('keeps retrying past its delays while keepTrying says so', async () => {
    let calls = 0;
    let keep = true;
    const onError = vi.fn();
    const written: LogChunk[] = [];
    const s = sink(
      async (chunks) => {
        calls++;
        if (calls < 6) throw new Error('etcd unavailable');
        written.push(...chunks);
        return true;
      },
      { keepTrying: () => keep, onError },
    );
    s.push('stdout', 'kept');
    const closing = s.close();
    await vi.advanceTimersByTimeAsync(20);
    await closing;
    expect(calls).toBe(6);
    expect(onError).not.toHaveBeenCalled();
    expect(text(written[0].entries)).toBe('kept');
    keep = false;
  });
});

describe('helpers', () => {
  it('formatBytes', () => {
    expect(formatBytes(8 * 2 ** 20)).toBe('8MiB');
    expect(formatBytes(2048)).toBe('2KiB');
    expect(formatBytes(1000)).toBe('1000 bytes');
  });

  it('splitUtf8', () => {
    expect(splitUtf8('abc', 10)).toEqual(['abc', '']);
    expect(splitUtf8('aé', 2)).toEqual(['a', 'é']);
    expect(splitUtf8('abc', 0)).toEqual(['', 'abc']);
  });
});
