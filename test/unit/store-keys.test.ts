import { describe, expect, it } from 'vitest';
import { canTransition, JOB_ID_PATTERN, newJobId } from '../../pkg/model/index.js';
import { decode, encode, Keys, prefixEnd } from '../../pkg/store/index.js';

describe('key layout', () => {
  const keys = new Keys('/titan/');

  it('builds and parses every key shape', () => {
    expect(keys.job('abc')).toBe('/titan/jobs/abc');
    expect(keys.assignment('n1', 'abc')).toBe('/titan/assign/n1/abc');
    expect(keys.parseAssignment('/titan/assign/n1/abc')).toEqual({ nodeId: 'n1', jobId: 'abc' });
    expect(keys.logChunk('n1', 'abc', 2, 17)).toBe('/titan/logs/n1/abc/0002/00000017');
    expect(keys.parseLogChunk('/titan/logs/n1/abc/0002/00000017')).toEqual({ nodeId: 'n1', jobId: 'abc', attempt: 2, seq: 17 });
    expect(keys.report('n1', 'abc')).toBe('/titan/reports/n1/abc');
    expect(keys.parseReport('/titan/reports/n1/abc')).toEqual({ nodeId: 'n1', jobId: 'abc' });
  });

  it('log chunk keys sort in write order', () => {
    const sorted = [100, 9, 10, 2].map((s) => keys.logChunk('n', 'j', 1, s)).sort();
    expect(sorted.map((k) => keys.parseLogChunk(k).seq)).toEqual([2, 9, 10, 100]);
  });

  it('prefixEnd bounds a prefix', () => {
    expect(prefixEnd('/titan/jobs/').toString()).toBe('/titan/jobs0');
  });
});

describe('codec and ids', () => {
  it('round-trips a job through msgpack', () => {
    const job = { id: 'x', env: { A: '1' }, command: ['a', 'b'], resources: { cpu: 1, memory: 2, gpuMilli: 0 } };
    expect(decode(encode(job))).toEqual(job);
  });

  it('job ids are short, unique and sorted by creation', () => {
    const ids = Array.from({ length: 5000 }, () => newJobId());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(ids.every((id) => JOB_ID_PATTERN.test(id))).toBe(true);
  });

  it('validates state transitions in one table', () => {
    expect(canTransition('Pending', 'Scheduled')).toBe(true);
    expect(canTransition('Succeeded', 'Running')).toBe(false);
    expect(canTransition('Running', 'Pending')).toBe(true);
  });
});
