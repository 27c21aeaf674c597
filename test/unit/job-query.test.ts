import { describe, expect, it } from 'vitest';
import { selectJobPage } from '../../internal/api/jobs.js';
import { listRedrawer, parseListFlags, renderJobTable } from '../../internal/cli/list.js';
import { waitExitCode } from '../../internal/cli/wait.js';
import type { Job } from '../../pkg/model/job.js';
import {
  jobOrder,
  jobQueryParams,
  matchesJob,
  parseJobQuery,
  parseJobSort,
  parseQueueFilter,
  parseStateFilter,
  selectJobs,
  type JobQuery,
} from '../../pkg/model/job-query.js';
import type { ApiToken } from '../../pkg/model/token.js';

const NOW = 1_000_000_000;
const MIN = 60_000;

function job(over: Partial<Job> & { id: string }): Job {
  return {
    name: over.id,
    kind: 'shell',
    command: ['true'],
    env: {},
    resources: { cpu: 100, memory: 64 * 2 ** 20, gpuMilli: 0 },
    priority: 0,
    labels: {},
    state: 'Pending',
    createdAt: NOW - MIN,
    attempt: 0,
    ...over,
  };
}

// Newest first, as the API's cache and an etcd scan hand them over.
const JOBS: Job[] = [
  job({ id: 'e', createdAt: NOW - 1 * MIN, queue: 'team-b', priority: 5, labels: { team: 'b' } }),
  job({ id: 'd', createdAt: NOW - 2 * MIN, state: 'Running', node: 'n1', priority: 10, labels: { team: 'a', tier: 'gold' } }),
  job({ id: 'c', createdAt: NOW - 30 * MIN, queue: 'team-a', state: 'Failed', exitCode: 3, labels: { team: 'a' } }),
  job({ id: 'b', createdAt: NOW - 90 * MIN, queue: 'team-b', priority: 5, state: 'Succeeded', exitCode: 0 }),
  job({ id: 'a', createdAt: NOW - 300 * MIN, queue: 'team-a', priority: -1, labels: { team: 'a', tier: 'gold' } }),
];

const ids = (jobs: readonly Job[]): string[] => jobs.map((j) => j.id);
const select = (input: Parameters<typeof parseJobQuery>[0], limit?: number): string[] => ids(selectJobs(JOBS, parseJobQuery(input), NOW, limit));

describe('parsing a job query', () => {
  it('takes states case-insensitively, comma-separated or repeated, without repeats', () => {
    expect(parseStateFilter('pending, RUNNING,Pending')).toEqual(['Pending', 'Running']);
    expect(parseStateFilter(['Failed', 'succeeded,failed'])).toEqual(['Failed', 'Succeeded']);
  });

  it('rejects unknown states and empty lists, naming the field', () => {
    expect(() => parseStateFilter('Pending,Done')).toThrowError(/^state: "Done" is not a job state \(use Pending, Scheduled/);
    expect(() => parseStateFilter(',')).toThrowError(/^state: give at least one state/);
    expect(() => parseStateFilter([])).toThrowError(/^state: /);
  });

  it('checks queue names, comma-separated or repeated', () => {
    expect(parseQueueFilter(['team-a,team-b', 'team-a'])).toEqual(['team-a', 'team-b']);
    expect(() => parseQueueFilter('a b')).toThrowError(/^queue: "a b" must be 1-63 letters/);
    expect(() => parseQueueFilter(' , ')).toThrowError(/^queue: give at least one queue name/);
  });

  it('takes the sorts by name and nothing else', () => {
    expect(parseJobSort('Priority')).toBe('priority');
    expect(parseJobSort('queue')).toBe('queue');
    expect(() => parseJobSort('name')).toThrowError(/^sort: "name" is not a sort order \(use age, priority, queue\)$/);
    expect(() => parseJobSort('')).toThrowError(/^sort: /);
  });

  it('reads every parameter; age is the default order, so it is left out', () => {
    expect(parseJobQuery({})).toEqual({});
    expect(parseJobQuery({ state: 'running', queue: 'q1', label: ['a=1', 'b=x=y'], since: '1h30m', q: 'web', sort: 'age' })).toEqual({
      states: ['Running'],
      queues: ['q1'],
      labels: { a: '1', b: 'x=y' },
      sinceMs: 90 * MIN,
      text: 'web',
    });
    expect(parseJobQuery({ sort: 'priority', q: '' })).toEqual({ sort: 'priority' });
  });

  it('rejects malformed labels, durations and sorts', () => {
    expect(() => parseJobQuery({ label: 'team' })).toThrowError(/^label: "team" is not KEY=VALUE/);
    expect(() => parseJobQuery({ label: ['ok=1', '=x'] })).toThrowError(/^label: "=x" is not KEY=VALUE/);
    expect(() => parseJobQuery({ label: 'bad key=1' })).toThrowError(/^label: "bad key" is not a valid key/);
    expect(() => parseJobQuery({ since: 'yesterday' })).toThrowError(/^since: "yesterday" is not a duration/);
    expect(() => parseJobQuery({ since: '0s' })).toThrowError(/^since: must be more than zero/);
    expect(() => parseJobQuery({ sort: 'newest' })).toThrowError(/^sort: /);
  });

  it('turns into API parameters that read back as the same query', () => {
    const queries: JobQuery[] = [
      {},
      { states: ['Pending', 'Running'], queues: ['a', 'b'], labels: { team: 'x', 'k/8s': 'a=b,c' }, sinceMs: 3_600_000, text: 'we b', sort: 'queue' },
      { sinceMs: 250, sort: 'priority' },
    ];
    for (const query of queries) {
      const params = jobQueryParams(query);
      const input = { ...Object.fromEntries(params), label: params.getAll('label') };
      if (input.label.length === 0) delete (input as { label?: string[] }).label;
      expect(parseJobQuery(input)).toEqual(query);
    }
    expect(jobQueryParams({ labels: { a: '1', b: '2' } }).toString()).toBe('label=a%3D1&label=b%3D2');
  });

  it('takes --state and its former name --status together, and a limit', () => {
    expect(parseListFlags({ state: ['Pending'], status: ['running'], limit: '3', sort: 'queue' })).toEqual({ states: ['Pending', 'Running'], sort: 'queue', limit: 3 });
    expect(() => parseListFlags({ limit: '0' })).toThrowError(/^limit: /);
  });
});

describe('which jobs a query lists, in which order', () => {
  it('lists every job newest first without a query', () => {
    expect(select({})).toEqual(['e', 'd', 'c', 'b', 'a']);
    expect(select({}, 2)).toEqual(['e', 'd']);
  });

  it('filters by state, queue (absent is default), every label, and since', () => {
    expect(select({ state: 'Pending,Running' })).toEqual(['e', 'd', 'a']);
    expect(select({ queue: 'default' })).toEqual(['d']);
    expect(select({ queue: ['team-a', 'team-b'] })).toEqual(['e', 'c', 'b', 'a']);
    expect(select({ label: 'team=a' })).toEqual(['d', 'c', 'a']);
    expect(select({ label: ['team=a', 'tier=gold'] })).toEqual(['d', 'a']);
    expect(select({ label: 'team=' })).toEqual([]);
    expect(select({ since: '30m' })).toEqual(['e', 'd', 'c']); // c was made exactly 30 minutes ago
    expect(select({ since: '29m' })).toEqual(['e', 'd']);
    expect(select({ state: 'Pending', queue: 'team-a', label: 'tier=gold', since: '1d' })).toEqual(['a']);
    expect(select({ q: 'E' })).toEqual(['e']);
  });

  it('sorts by priority (highest first) or queue (by name), ties newest first', () => {
    expect(select({ sort: 'priority' })).toEqual(['d', 'e', 'b', 'c', 'a']);
    expect(select({ sort: 'queue' })).toEqual(['d', 'c', 'a', 'e', 'b']);
    expect(select({ sort: 'priority', state: 'Pending' }, 2)).toEqual(['e', 'a']);
    // The order is total: equal times fall back to the id, so both ways list alike.
    const twins = [job({ id: 'x', createdAt: 5 }), job({ id: 'y', createdAt: 5 })];
    expect(ids([...twins].sort(jobOrder(undefined)))).toEqual(['y', 'x']);
    expect(ids([...twins].reverse().sort(jobOrder('priority')))).toEqual(['y', 'x']);
  });

  it('matches on what the job is as of the list', () => {
    const old = job({ id: 'o', createdAt: NOW - 2 * MIN });
    expect(matchesJob({ sinceMs: 3 * MIN }, old, NOW)).toBe(true);
    expect(matchesJob({ sinceMs: 3 * MIN }, old, NOW + 2 * MIN)).toBe(false);
  });
});

describe("the API's pages", () => {
  const cache = JOBS.map((value) => ({ value }));
  const page = (query: JobQuery, limit: number, cursor?: string, token?: ApiToken): { jobs: string[]; nextCursor: string | null } => {
    const p = selectJobPage(cache, query, token, NOW, limit, cursor);
    return { jobs: ids(p.jobs), nextCursor: p.nextCursor };
  };

  it('pages through the same jobs, in the same order, as one list', () => {
    for (const query of [{}, { sort: 'priority' }, { sort: 'queue', label: { team: 'a' } }, { states: ['Pending', 'Failed'] }] as JobQuery[]) {
      const all: string[] = [];
      let cursor: string | undefined;
      do {
        const p = page(query, 2, cursor);
        all.push(...p.jobs);
        cursor = p.nextCursor ?? undefined;
      } while (cursor !== undefined);
      expect(all, JSON.stringify(query)).toEqual(ids(selectJobs(JOBS, query, NOW)));
    }
  });

  it("finds the cursor's job after it stopped matching, and leaves out jobs the token may not see", () => {
    // "d" was Running on the first page; it has since ended.
    const changed = [...cache];
    changed[1] = { value: { ...JOBS[1], state: 'Succeeded' } };
    expect(ids(selectJobPage(changed, { states: ['Pending', 'Running'] }, undefined, NOW, 10, 'd').jobs)).toEqual(['a']);
    expect(ids(selectJobPage(changed, { states: ['Running'], sort: 'priority' }, undefined, NOW, 10, 'd').jobs)).toEqual([]);
    const teamA = { queues: ['team-a'] } as ApiToken;
    expect(page({ sort: 'priority' }, 10, undefined, teamA).jobs).toEqual(['c', 'a']);
  });
});

describe('the job table', () => {
  it('-o wide adds priority, resources, GPU devices, attempts and the reason', () => {
    const jobs = [
      job({ id: 'gpu', state: 'Running', node: 'n1', attempt: 2, priority: 3, queue: 'ml', resources: { cpu: 2000, memory: 2 ** 30, gpuMilli: 2000 }, gpuDevices: ['GPU-a', 'GPU-b'] }),
      job({ id: 'wait', createdAt: NOW - 3 * 3_600_000, reason: 'waiting for capacity: needs 4 GPUs' }),
    ];
    const lines = renderJobTable(jobs, NOW, true).trimEnd().split('\n').map((l) => l.split(/ {3,}/));
    expect(lines).toEqual([
      ['ID', 'NAME', 'STATUS', 'QUEUE', 'PRIORITY', 'NODE', 'CPU', 'MEMORY', 'GPU', 'GPU DEVICES', 'ATTEMPTS', 'AGE', 'REASON'],
      ['gpu', 'gpu', 'Running', 'ml', '3', 'n1', '2', '1Gi', '2', 'GPU-a,GPU-b', '2', '1m', '-'],
      ['wait', 'wait', 'Pending', 'default', '0', '-', '0.1', '64Mi', '0', '-', '0', '3h', 'waiting for capacity: needs 4 GPUs'],
    ]);
  });

  it('--watch prints a list only when it differs from the last, in place on a terminal', () => {
    const printed: string[] = [];
    const draw = listRedrawer({ out: (t) => void printed.push(t) }, 'table', () => NOW);
    draw([JOBS[0]]);
    draw([JOBS[0]]);
    draw([]);
    expect(printed).toEqual([renderJobTable([JOBS[0]], NOW), `\n${renderJobTable([], NOW)}`]);

    const tty: string[] = [];
    const redraw = listRedrawer({ out: (t) => void tty.push(t), outIsTTY: true }, 'wide', () => NOW);
    redraw([JOBS[1]]);
    redraw([JOBS[1], JOBS[0]]);
    expect(tty).toEqual([`\x1b[H\x1b[2J${renderJobTable([JOBS[1]], NOW, true)}`, `\x1b[H\x1b[2J${renderJobTable([JOBS[1], JOBS[0]], NOW, true)}`]);

    const lines: string[] = [];
    const json = listRedrawer({ out: (t) => void lines.push(t) }, 'json');
    json([JOBS[0]]);
    json([]);
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([[JOBS[0]], []]);
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
  });
});

describe('titan wait', () => {
  it('exits 0 when all succeeded, else as submit --wait for the first that did not', () => {
    const ok = job({ id: 'ok', state: 'Succeeded', exitCode: 0 });
    const three = job({ id: 'f3', state: 'Failed', exitCode: 3 });
    const lost = job({ id: 'lost', state: 'Failed' });
    const cancelled = job({ id: 'x', state: 'Cancelled' });
    expect(waitExitCode([])).toBe(0);
    expect(waitExitCode([ok, ok])).toBe(0);
    expect(waitExitCode([ok, three, cancelled])).toBe(3);
    expect(waitExitCode([cancelled, three])).toBe(1);
    expect(waitExitCode([lost, three])).toBe(1);
  });
});
