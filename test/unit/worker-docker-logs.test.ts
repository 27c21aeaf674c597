import { describe, expect, it } from 'vitest';
import { DockerStreamReader } from '../../internal/worker/docker-logs.js';
import type { LogOffsets, LogStream } from '../../pkg/model/index.js';

/** One frame of Docker's multiplexed stream. */
function frame(stream: LogStream, text: string | Buffer): Buffer {
  const payload = typeof text === 'string' ? Buffer.from(text) : text;
  const header = Buffer.alloc(8);
  header[0] = stream === 'stderr' ? 2 : 1;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

function collect(skip?: LogOffsets) {
  const out: { stream: LogStream; data: string }[] = [];
  const reader = new DockerStreamReader((stream, data) => out.push({ stream, data }), skip);
  const joined = (stream: LogStream): string =>
    out
      .filter((o) => o.stream === stream)
      .map((o) => o.data)
      .join('');
  return { out, reader, joined };
}

describe('DockerStreamReader', () => {
  it('splits frames across reads and keeps the stream', () => {
    const { out, reader } = collect();
    const data = Buffer.concat([frame('stdout', 'one\n'), frame('stderr', 'two\n'), frame('stdout', 'three')]);
    // Fed in awkward pieces: mid-header, mid-payload.
    for (let i = 0; i < data.length; i += 5) reader.push(data.subarray(i, i + 5));
    reader.end();
    expect(out).toEqual([
      { stream: 'stdout', data: 'one\n' },
      { stream: 'stderr', data: 'two\n' },
      { stream: 'stdout', data: 'three' },
    ]);
  });

  it('hands consecutive frames of one stream over as one piece', () => {
    const { out, reader } = collect();
    reader.push(Buffer.concat([frame('stdout', 'a\n'), frame('stdout', 'b\n'), frame('stderr', 'c\n'), frame('stdout', 'd\n')]));
    expect(out).toEqual([
      { stream: 'stdout', data: 'a\nb\n' },
      { stream: 'stderr', data: 'c\n' },
      { stream: 'stdout', data: 'd\n' },
    ]);
  });

  it('skips, per stream, the bytes already stored, also inside a frame', () => {
    const { reader, joined } = collect({ stdout: 5, stderr: 2 });
    reader.push(Buffer.concat([frame('stdout', 'abc'), frame('stderr', 'xyz\n'), frame('stdout', 'defgh\n')]));
    reader.end();
    expect(joined('stdout')).toBe('fgh\n');
    expect(joined('stderr')).toBe('z\n');
  });

  it('skips by UTF-8 bytes of the decoded text, the way the sink counts them', () => {
    const { reader, joined } = collect({ stdout: Buffer.byteLength('é€') });
    reader.push(frame('stdout', 'é€ü\n'));
    expect(joined('stdout')).toBe('ü\n');
  });

  it('keeps a character split across two frames whole', () => {
    const { reader, joined } = collect();
    const euro = Buffer.from('€');
    reader.push(frame('stdout', Buffer.concat([Buffer.from('x'), euro.subarray(0, 1)])));
    reader.push(frame('stderr', 'e'));
    reader.push(frame('stdout', Buffer.concat([euro.subarray(1), Buffer.from('y')])));
    reader.end();
    expect(joined('stdout')).toBe('x€y');
    expect(joined('stderr')).toBe('e');
  });
});
