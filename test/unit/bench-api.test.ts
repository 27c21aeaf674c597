import { describe, expect, it } from 'vitest';
import { benchLogLine, checkSequence, completeApiRatios, loadRatio, parseBenchLogLines } from '../../scripts/bench/api-figures.js';
import { emptyApiFigures } from '../../scripts/bench/api-phases.js';
import { countLogMessages } from '../../scripts/bench/master-process.js';
import { parseBenchOptions } from '../../scripts/bench/options.js';
import { API_TARGETS, apiVerdict, formatReport, jobsOfRun, type BenchResult } from '../../scripts/bench/report.js';
import { SseParser, type ServerEvent } from '../../pkg/sse/parser.js';

describe('the SSE parser', () => {
  it('reads events cut anywhere, with CRLF, comments, several data lines and ids', () => {
    const events: ServerEvent[] = [];
    const comments: string[] = [];
    const parser = new SseParser((e) => events.push(e), (c) => comments.push(c));
    const text = ': keep-alive\r\nid: 1:0\r\nevent: log\r\ndata: {"a":1}\r\n\r\nid: 1:1\nevent: log\ndata: line one\ndata: line two\n\nevent: end\ndata: {}\n\n';
    for (let i = 0; i < text.length; i += 7) parser.push(text.slice(i, i + 7));
    expect(comments).toEqual(['keep-alive']);
    expect(events).toEqual([
      { id: '1:0', event: 'log', data: '{"a":1}' },
      { id: '1:1', event: 'log', data: 'line one\nline two' },
      { event: 'end', data: '{}' },
    ]);
  });

  it('dispatches nothing without data, and nothing before the blank line', () => {
    const events: ServerEvent[] = [];
    const parser = new SseParser((e) => events.push(e));
    parser.push('id: 5\n\n');
    parser.push('data: x\n');
    expect(events).toEqual([]);
    parser.push('\n');
    expect(events).toEqual([{ event: 'message', data: 'x' }]);
  });
});

describe('bench log lines', () => {
  it('reads back the lines the simulated worker writes, plain or JSON-escaped', () => {
    const lines = benchLogLine(7, 1_700_000_000_123.457) + benchLogLine(8, 1_700_000_000_223.5);
    expect(lines).toBe('titan-bench-log 7 1700000000123.457\ntitan-bench-log 8 1700000000223.500\n');
    const expected = [
      { seq: 7, flushedAtMs: 1_700_000_000_123.457 },
      { seq: 8, flushedAtMs: 1_700_000_000_223.5 },
    ];
    expect(parseBenchLogLines(lines)).toEqual(expected);
    const event = JSON.stringify({ attempt: 1, seq: 3, entries: [{ stream: 'stdout', data: lines }] });
    expect(parseBenchLogLines(event)).toEqual(expected);
    expect(parseBenchLogLines('nothing here')).toEqual([]);
  });

  it('counts lines missing and repeated between the first and the last received', () => {
    expect(checkSequence([])).toEqual({ received: 0, distinct: 0, missing: 0, repeated: 0 });
    expect(checkSequence([4, 5, 6])).toEqual({ received: 3, distinct: 3, missing: 0, repeated: 0 });
    expect(checkSequence([4, 6, 6, 9])).toEqual({ received: 4, distinct: 3, missing: 3, repeated: 1 });
  });
});

describe('bench --api figures', () => {
  const base = (): BenchResult => ({
    etcdBatchedKeysPerSec: null,
    etcdSequentialPutsPerSec: null,
    submitJobsPerSec: null,
    placementsPerSec: 10_000,
    placementEtcdRatio: null,
    dispatchP50Ms: 10,
    dispatchP99Ms: 40,
    masterRssMiB: null,
    etcdDbMiB: null,
    etcdDbMiBBefore: null,
    etcdDbMiBAfter: null,
    api: { ...emptyApiFigures(50), logFollowers: 1, placementsPerSecLoaded: 9500, dispatchP50MsLoaded: 10.5, dispatchP99MsLoaded: 50 },
    details: {},
    parameters: {
      nodes: 200,
      jobs: 10_000,
      rate: 500,
      latencyJobs: 5000,
      warmupMs: 1000,
      nodeCpuMilli: 64_000,
      nodeMemoryBytes: 2 ** 38,
      jobCpuMilli: 100,
      jobMemoryBytes: 2 ** 26,
      complete: true,
      runMs: 0,
      ackConcurrency: 64,
      nodesPerLease: 100,
      ackDuringPlacement: false,
      retainJobs: null,
      retentionIntervalMs: null,
      etcd: 'own',
      prefix: '/titan-bench-x',
      apiClients: 50,
    },
    command: 'npm run bench -- --api',
    revision: 'abc1234',
    machine: { cpus: 2, cpuModel: 'test', memoryGiB: 4, node: 'v20', platform: 'linux', loadAverageAtStart: 1 },
    errors: [],
  });

  it('takes each ratio as with ÷ without, and none when a side is missing', () => {
    expect(loadRatio(9, 10)).toBe(0.9);
    expect(loadRatio(null, 10)).toBeNull();
    expect(loadRatio(5, 0)).toBeNull();
    expect(loadRatio(5, undefined)).toBeNull();
    const r = base();
    completeApiRatios(r);
    expect(r.api).toMatchObject({ placementRatio: 0.95, dispatchP50Ratio: 1.05, dispatchP99Ratio: 1.25 });
    const none = { ...base(), placementsPerSec: null };
    completeApiRatios(none);
    expect(none.api?.placementRatio).toBeNull();
  });

  it('judges the ratios against "within 10%"', () => {
    const r = base();
    completeApiRatios(r);
    const api = r.api ?? emptyApiFigures(0);
    const verdicts = Object.fromEntries(API_TARGETS.map((t) => [t.figure, apiVerdict(t, api)]));
    expect(verdicts).toEqual({ placementRatio: 'met', dispatchP50Ratio: 'met', dispatchP99Ratio: 'missed' });
    expect(apiVerdict(API_TARGETS[0], emptyApiFigures(50))).toBe('not measured');
  });

  it('prints the comparison and the API figures', () => {
    const r = base();
    r.api = { ...(r.api ?? emptyApiFigures(50)), jobsPageP99Ms: 4, jobsPageP99MsLoaded: 8, etcdRangeP99Ms: 2, jobsPageEtcdRatio: 2, logStreamP50Ms: 12, logStreamP99Ms: 40 };
    const l = (p50: number, p99: number) => ({ count: 300, min: 1, mean: p50, p50, p90: p99, p99, max: p99 });
    r.details.api = {
      jobsAtProbe: 10_001,
      sessions: [{ name: 'the second burst', seconds: 5, cpuSeconds: 1.5, answers: { '/v1/nodes': 10 }, errors: 0, logEvents: 50, logLinesMissing: 0, logLinesRepeated: 0, logReconnects: 0 }],
      logStreamMs: l(12, 40),
    };
    completeApiRatios(r);
    const text = formatReport(r);
    expect(text).toMatch(/API: 50 dashboard clients and 1 log follower/);
    expect(text).toMatch(/placements\s+10,000\/s\s+9,500\/s\s+0\.95\s+≥ 0\.9\s+met/);
    expect(text).toMatch(/dispatch P99\s+40 ms\s+50 ms\s+1\.25\s+≤ 1\.1\s+missed/);
    expect(text).toMatch(/GET \/v1\/jobs\?limit=100 P99\s+4 ms\s+8 ms\s+2/);
    expect(text).toMatch(/probed with 10,001 jobs in etcd; page P99 \/ etcd range P99: 2/);
    expect(text).toMatch(/log stream, worker flush to client: P50 12 ms, P99 40 ms over 300 lines \(0 missing, 0 repeated\)/);
    expect(text).toMatch(/clients during the second burst \(5 s\): 10 answers, 50 log events, 0 errors, load process 1\.5 CPU-s/);
    expect(formatReport({ ...r, api: null })).not.toMatch(/dashboard clients/);
  });

  it('is off by default; --api-clients implies --api; it needs a burst', () => {
    expect(parseBenchOptions([])).toMatchObject({ api: false, apiClients: 50 });
    expect(parseBenchOptions(['--api'])).toMatchObject({ api: true, apiClients: 50 });
    expect(parseBenchOptions(['--api-clients', '20'])).toMatchObject({ api: true, apiClients: 20 });
    expect(() => parseBenchOptions(['--api', '--api-clients', '0'])).toThrow(/--api-clients/);
    expect(() => parseBenchOptions(['--api', '--jobs', '0'])).toThrow(/--api/);
  });

  it('counts the second burst, the second dispatch phase and the followed job among the jobs of the run', () => {
    expect(jobsOfRun({ jobs: 10_000, latencyJobs: 5000, rate: 500, warmupMs: 1000, apiClients: 50 })).toBe(2 * 15_500 + 1);
  });
});

describe('bench master log', () => {
  it("counts the master's leadership losses in its JSON log, past other lines", () => {
    const log = [
      '(node:1) [FSTDEP023] FastifyDeprecation: something',
      '{"level":40,"msg":"no longer leader","reason":"no keepalive for 5397 ms"}',
      '{"level":40,"msg":"master lease lost"}',
      '{"level":40,"msg":"no longer leader","reason":"lease lost"}',
      '{"level":40,"msg":"no longer lea',
    ].join('\n');
    expect(countLogMessages(log, ['no longer leader'])).toBe(2);
    expect(countLogMessages('', ['no longer leader'])).toBe(0);
  });
});
