import { describe, expect, it } from 'vitest';
import { TimestampedLogReader } from '../../internal/worker/docker-logs.js';
import { compareDockerTime, parseDockerTime, sinceSeconds } from '../../internal/worker/docker-time.js';
import type { LogMarks, LogStream } from '../../pkg/model/index.js';

/** One frame of Docker's multiplexed stream. */
function frame(stream: LogStream, text: string | Buffer): Buffer {
  const payload = typeof text === 'string' ? Buffer.from(text) : text;
  const header = Buffer.alloc(8);
  header[0] = stream === 'stderr' ? 2 : 1;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

function collect(after?: LogMarks) {
  const out: { stream: LogStream; data: string; ts?: string }[] = [];
  const reader = new TimestampedLogReader((stream, data, ts) => out.push({ stream, data, ...(ts ? { ts } : {}) }), after);
  return { out, reader };
}

const T1 = '2025-01-02T03:04:05.000000001Z';
const T2 = '2025-01-02T03:04:05.000000002Z';
const T3 = '2025-01-02T03:04:06.5Z';

describe('docker time', () => {
  it('compares to the nanosecond and rounds since down', () => {
    expect(compareDockerTime(T1, T2)).toBeLessThan(0);
    expect(compareDockerTime(T2, T2)).toBe(0);
    expect(compareDockerTime(T3, T2)).toBeGreaterThan(0);
    expect(compareDockerTime('2025-01-02T04:04:05.1+01:00', '2025-01-02T03:04:05.0Z')).toBeGreaterThan(0);
    expect(parseDockerTime(T3)).toEqual({ seconds: Date.parse('2025-01-02T03:04:06Z') / 1000, nanos: 500_000_000 });
    // A second before the earliest mark.
    expect(sinceSeconds([T3, T1])).toBe(Date.parse('2025-01-02T03:04:05Z') / 1000 - 1);
    expect(sinceSeconds([])).toBeUndefined();
    expect(parseDockerTime('yesterday')).toBeUndefined();
  });
});

describe('TimestampedLogReader', () => {
  it('splits frames across reads, strips timestamps and keeps the stream', () => {
    const { out, reader } = collect();
    const data = Buffer.concat([frame('stdout', `${T1} one\n`), frame('stderr', `${T2} two\n`), frame('stdout', `${T3} three`)]);
    // Fed in awkward pieces: mid-header, mid-payload.
    for (let i = 0; i < data.length; i += 5) reader.push(data.subarray(i, i + 5));
    reader.end();
    expect(out).toEqual([
      { stream: 'stdout', data: 'one\n', ts: T1 },
      { stream: 'stderr', data: 'two\n', ts: T2 },
      { stream: 'stdout', data: 'three', ts: T3 },
    ]);
  });

  it('drops, per stream, what the marks say is stored', () => {
    const { out, reader } = collect({ stdout: { ts: T2, count: 1 } });
    reader.push(Buffer.concat([frame('stdout', `${T1} a\n`), frame('stdout', `${T2} b\n`), frame('stdout', `${T3} c\n`)]));
    reader.end();
    expect(out).toEqual([{ stream: 'stdout', data: 'c\n', ts: T3 }]);
  });

  it('resumes among messages that share a timestamp, and each stream on its own', () => {
    // Docker wrote stderr's older line after stdout's newer one: file order is not time order across streams.
    const { out, reader } = collect({ stdout: { ts: T2, count: 2 } });
    reader.push(
      Buffer.concat([
        frame('stdout', `${T2} part1`),
        frame('stdout', `${T2} part2`),
        frame('stdout', `${T2} part3\n`),
        frame('stderr', `${T1} older\n`),
        frame('stdout', `${T3} next\n`),
      ]),
    );
    reader.end();
    expect(out.map((o) => `${o.stream}:${o.data}`)).toEqual(['stdout:part3\n', 'stderr:older\n', 'stdout:next\n']);
  });

  it('keeps a character split across two frames whole', () => {
    const { out, reader } = collect();
    const euro = Buffer.from('€');
    reader.push(frame('stdout', Buffer.concat([Buffer.from(`${T1} x`), euro.subarray(0, 1)])));
    reader.push(frame('stdout', Buffer.concat([Buffer.from(`${T2} `), euro.subarray(1), Buffer.from('y')])));
    reader.end();
    expect(out.map((o) => o.data).join('')).toBe('x€y');
  });
});
