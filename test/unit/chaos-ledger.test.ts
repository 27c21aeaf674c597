import { describe, expect, it } from 'vitest';
import { duplicateRunJobs, earlyDependents, parseRunEvent, type RunEvent } from '../../scripts/chaos/ledger.js';

const ev = (kind: RunEvent['kind'], jobId: string, attempt: number, node: string, at: number): RunEvent => ({ kind, jobId, attempt, node, at });

describe('chaos run ledger', () => {
  it('parses the lines jobs report', () => {
    expect(parseRunEvent('start j1 2 node-a\n', 5)).toEqual({ kind: 'start', jobId: 'j1', attempt: 2, node: 'node-a', at: 5 });
    expect(parseRunEvent('garbage', 5)).toBeUndefined();
  });

  it('accepts a retry after a lost run, sequentially', () => {
    expect(duplicateRunJobs([ev('start', 'a', 1, 'n1', 0), ev('start', 'a', 2, 'n2', 10), ev('done', 'a', 2, 'n2', 20)])).toEqual([]);
    expect(duplicateRunJobs([ev('start', 'a', 1, 'n1', 0), ev('done', 'a', 1, 'n1', 5), ev('start', 'a', 2, 'n2', 10), ev('done', 'a', 2, 'n2', 20)])).toEqual([]);
  });

  it('flags one attempt completing twice', () => {
    expect(duplicateRunJobs([ev('start', 'a', 1, 'n1', 0), ev('done', 'a', 1, 'n1', 5), ev('start', 'a', 1, 'n1', 6), ev('done', 'a', 1, 'n1', 9)])).toEqual(['a']);
  });

  it('flags completed runs overlapping on two nodes', () => {
    expect(duplicateRunJobs([ev('start', 'b', 1, 'n1', 0), ev('start', 'b', 2, 'n2', 3), ev('done', 'b', 1, 'n1', 5), ev('done', 'b', 2, 'n2', 8)])).toEqual(['b']);
  });

  it('flags a dependent that started before a job it waits for ran its last', () => {
    const events = [ev('start', 'p', 1, 'n1', 0), ev('start', 'p', 2, 'n2', 10), ev('done', 'p', 2, 'n2', 20), ev('start', 'q', 1, 'n1', 0), ev('done', 'q', 1, 'n1', 5)];
    const parents = new Map([['late', ['p', 'q']], ['early', ['p']], ['waiting', ['p']], ['orphan', ['never-ran']]]);
    const dependents = [ev('start', 'late', 1, 'n1', 21), ev('start', 'early', 1, 'n3', 15), ev('start', 'orphan', 1, 'n1', 30)];
    expect(earlyDependents([...events, ...dependents], parents)).toEqual(['early', 'orphan']);
  });
});
