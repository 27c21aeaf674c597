import { describe, expect, it } from 'vitest';
import {
  ageSince,
  formatAge,
  formatCommand,
  formatCpu,
  formatDuration,
  formatKeyValues,
  formatMemory,
  renderFields,
  renderTable,
} from '../../internal/cli/format.js';
import { renderJobTable } from '../../internal/cli/list.js';
import { renderNodeTable, summarizeNodes } from '../../internal/cli/nodes.js';
import type { Job, NodeInfo } from '../../pkg/model/index.js';

describe('formatAge', () => {
  it.each([
    [0, '0s'],
    [999, '0s'],
    [5_000, '5s'],
    [59_999, '59s'],
    [60_000, '1m'],
    [3 * 60_000 + 59_000, '3m'],
    [59 * 60_000, '59m'],
    [3_600_000, '1h'],
    [2 * 3_600_000 + 59 * 60_000, '2h'],
    [23 * 3_600_000, '23h'],
    [86_400_000, '1d'],
    [4 * 86_400_000 + 5 * 3_600_000, '4d'],
    [400 * 86_400_000, '400d'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatAge(ms)).toBe(text);
  });

  it('treats clock skew (negative) and garbage as 0s', () => {
    expect(formatAge(-5000)).toBe('0s');
    expect(formatAge(Number.NaN)).toBe('0s');
  });

  it('ageSince shows - for unknown times', () => {
    expect(ageSince(undefined, 1000)).toBe('-');
    expect(ageSince(0, 1000)).toBe('-');
    expect(ageSince(1000, 181_000)).toBe('3m');
  });
});

describe('resource formatting', () => {
  it.each([
    [0, '0'],
    [100, '0.1'],
    [500, '0.5'],
    [1250, '1.25'],
    [2000, '2'],
    [1, '0.001'],
  ])('cpu %d millicores → %s cores', (milli, text) => {
    expect(formatCpu(milli)).toBe(text);
  });

  it.each([
    [0, '0'],
    [512, '512B'],
    [2048, '2Ki'],
    [512 * 2 ** 20, '512Mi'],
    [1536 * 2 ** 20, '1.5Gi'],
    [8160437862, '7.6Gi'],
    [64 * 2 ** 30, '64Gi'],
    [2 * 2 ** 40, '2Ti'],
  ])('memory %d bytes → %s', (bytes, text) => {
    expect(formatMemory(bytes)).toBe(text);
  });

  it('formats durations for summaries', () => {
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(4200)).toBe('4.2s');
    expect(formatDuration(192_000)).toBe('3m12s');
    expect(formatDuration(3_900_000)).toBe('1h05m');
  });

  it('formats labels sorted by key, and commands with quotes where needed', () => {
    expect(formatKeyValues({ zone: 'a', gpu: 'a100' })).toBe('gpu=a100,zone=a');
    expect(formatKeyValues({})).toBe('-');
    expect(formatCommand(['/bin/sh', '-c', "echo it's"])).toBe(`/bin/sh -c 'echo it'\\''s'`);
    expect(formatCommand(['sleep', '5'])).toBe('sleep 5');
  });
});

describe('tables', () => {
  it('pads columns with three spaces, no borders, no trailing spaces, - for empty cells', () => {
    const text = renderTable(
      ['ID', 'NAME', 'AGE'],
      [
        ['a', 'long-name', '5s'],
        ['bbbb', '', '3m'],
      ],
    );
    expect(text).toBe(['ID     NAME        AGE', 'a      long-name   5s', 'bbbb   -           3m', ''].join('\n'));
    expect(text.split('\n').every((l) => l === l.trimEnd())).toBe(true);
  });

  it('keeps one line per row even when a cell holds newlines', () => {
    expect(renderTable(['A', 'B'], [['x\ny', 'z']])).toBe('A     B\nx y   z\n');
  });

  it('renders header-only tables and detail fields', () => {
    expect(renderTable(['ID', 'NAME'], [])).toBe('ID   NAME\n');
    expect(renderFields([['ID', 'x'], ['Exit code', '']])).toBe('ID:         x\nExit code:  -\n');
  });

  it('lays out the job list like kubectl', () => {
    const now = 1_000_000_000;
    const base: Omit<Job, 'id' | 'name' | 'state' | 'createdAt'> = { kind: 'shell', command: [], env: {}, resources: { cpu: 100, memory: 1, gpuMilli: 0 }, priority: 0, labels: {}, attempt: 0 };
    const jobs: Job[] = [
      { ...base, id: '1m84s8dc9d1k6', name: 'web', state: 'Running', node: 'node-1', createdAt: now - 120_000 },
      { ...base, id: '1m84s8d266cv5', name: '', state: 'Pending', queue: 'team-a', createdAt: now - 5_000 },
    ];
    expect(renderJobTable(jobs, now)).toBe(
      [
        'ID              NAME   STATUS    QUEUE     NODE     AGE',
        '1m84s8dc9d1k6   web    Running   default   node-1   2m',
        '1m84s8d266cv5   -      Pending   team-a    -        5s',
        '',
      ].join('\n'),
    );
  });

  it('lays out nodes with allocation over capacity', () => {
    const now = 10 * 86_400_000;
    const info: NodeInfo = {
      id: 'n1',
      hostname: 'h',
      capacity: { cpu: 4000, memory: 8 * 2 ** 30, gpuMilli: 1000 },
      gpus: [],
      labels: { zone: 'a' },
      executors: ['shell'],
      registeredAt: now - 4 * 86_400_000,
      version: 'x',
    };
    const nodes = summarizeNodes([info], [
      { jobId: 'j1', nodeId: 'n1', attempt: 1, resources: { cpu: 500, memory: 512 * 2 ** 20, gpuMilli: 1000 }, gpuDevices: ['0'], assignedAt: now },
    ]);
    expect(renderNodeTable(nodes, now)).toBe(
      [
        'NODE   CPU     MEMORY      GPU   JOBS   EXECUTORS   LABELS   AGE',
        'n1     0.5/4   512Mi/8Gi   1/1   1      shell       zone=a   4d',
        '',
      ].join('\n'),
    );
  });
});

describe('status view', () => {
  it('shows the fields, retries and earlier attempts', async () => {
    const { renderJobStatus } = await import('../../internal/cli/jobs.js');
    const now = 100_000_000;
    const job: Job = {
      id: '1m84s8dc9d1k6',
      name: 'web',
      kind: 'docker',
      image: 'busybox',
      command: ['/bin/sh', '-c', 'echo hi'],
      env: { A: '1' },
      resources: { cpu: 500, memory: 512 * 2 ** 20, gpuMilli: 1000 },
      priority: 3,
      labels: { team: 'a' },
      state: 'Pending',
      reason: 'retrying after exit 1',
      createdAt: now - 120_000,
      attempt: 1,
      retries: 2,
      failureCount: 1,
      retryAt: now + 5000,
      history: [{ attempt: 1, node: 'n1', state: 'Failed', exitCode: 1, finishedAt: now - 10_000, failure: 'exit' }],
    };
    const text = renderJobStatus(job, now);
    expect(text).toMatch(/^ID:\s+1m84s8dc9d1k6$/m);
    expect(text).toMatch(/^Image:\s+busybox$/m);
    expect(text).toMatch(/^Command:\s+\/bin\/sh -c 'echo hi'$/m);
    expect(text).toMatch(/^State:\s+Pending$/m);
    expect(text).toMatch(/^Reason:\s+retrying after exit 1$/m);
    expect(text).toMatch(/^Node:\s+-$/m);
    expect(text).toMatch(/^Exit code:\s+-$/m);
    expect(text).toMatch(/^Resources:\s+cpu 0\.5, memory 512Mi, gpu 1$/m);
    expect(text).toMatch(/^Queue:\s+default$/m);
    expect(text).toMatch(/^Created:\s+\S+ \(2m ago\)$/m);
    expect(text).toMatch(/^Started:\s+-$/m);
    expect(text).toMatch(/^Retries:\s+1 of 2 used$/m);
    expect(text).toMatch(/^Retry at:\s+\S+ \(in 5s\)$/m);
    expect(text).toContain('Earlier attempts:\n  ATTEMPT   NODE   STATE    EXIT   FINISHED   REASON\n  1         n1     Failed   1      10s ago    exit\n');
  });
});
