import { describe, expect, it } from 'vitest';
import { arrayTaskId } from '../../pkg/model/array.js';
import { newJobId } from '../../pkg/model/id.js';
import type { Job } from '../../pkg/model/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { makeJob, putJob } from './fixtures.js';
import { runCli, startCli, type RunningCli } from './run-cli.js';

const ctx = etcdSuite('cli-list');
const cli = (...args: string[]) => runCli(args, { endpoints: ctx.etcd.endpoints, prefix: ctx.prefix });
const start = (...args: string[]) => startCli(args, { endpoints: ctx.etcd.endpoints, prefix: ctx.prefix });
const MIN = 60_000;

async function names(...args: string[]): Promise<string[]> {
  const res = await cli('list', ...args, '-o', 'json');
  expect(res.code, res.stderr).toBe(0);
  return (JSON.parse(res.stdout) as Job[]).map((j) => j.name);
}

/** Rows of a table, cells split on the three-space gaps (a reason holds single spaces). */
const rows = (text: string): string[][] => text.trimEnd().split('\n').map((l) => l.split(/ {3,}/));

/** Five jobs, newest first: the one set the list tests read. */
async function seed(): Promise<Job[]> {
  const now = Date.now();
  const jobs = [
    makeJob({ name: 'e', createdAt: now - 1 * MIN, queue: 'team-b', priority: 5, labels: { team: 'b' } }),
    makeJob({
      name: 'd', createdAt: now - 2 * MIN, state: 'Running', node: 'n1', attempt: 2, priority: 10, labels: { team: 'a', tier: 'gold' },
      resources: { cpu: 2000, memory: 2 ** 30, gpuMilli: 2000 }, gpuDevices: ['GPU-0', 'GPU-1'],
    }),
    makeJob({ name: 'c', createdAt: now - 30 * MIN, queue: 'team-a', state: 'Failed', exitCode: 3, attempt: 1, labels: { team: 'a' }, reason: 'exited with code 3' }),
    makeJob({ name: 'b', createdAt: now - 90 * MIN, queue: 'team-b', priority: 5, state: 'Succeeded', exitCode: 0, attempt: 1 }),
    makeJob({ name: 'a', createdAt: now - 300 * MIN, queue: 'team-a', priority: -1, labels: { team: 'a', tier: 'gold' }, reason: 'waiting for capacity: needs 2 GPUs' }),
  ];
  for (const j of jobs) await putJob(ctx.store, j);
  return jobs;
}

describe('titan list', () => {
  it('filters by state, queue, label and since; each repeatable where it makes sense', async () => {
    await seed();
    expect(await names()).toEqual(['e', 'd', 'c', 'b', 'a']);
    expect(await names('--state', 'pending', '--state', 'Running')).toEqual(['e', 'd', 'a']);
    expect(await names('--state', 'Pending,Running')).toEqual(['e', 'd', 'a']);
    expect(await names('--status', 'Failed')).toEqual(['c']); // the flag's former name
    expect(await names('--queue', 'default')).toEqual(['d']);
    expect(await names('--queue', 'team-a,team-b', '--limit', '3')).toEqual(['e', 'c', 'b']);
    expect(await names('--queue', 'team-a', '--queue', 'nowhere')).toEqual(['c', 'a']);
    expect(await names('--label', 'team=a')).toEqual(['d', 'c', 'a']);
    expect(await names('--label', 'team=a', '--label', 'tier=gold')).toEqual(['d', 'a']);
    expect(await names('--since', '1h')).toEqual(['e', 'd', 'c']);
    expect(await names('--since', '1h', '--state', 'Pending', '--label', 'team=b', '--queue', 'team-b')).toEqual(['e']);
    const none = await cli('list', '--state', 'Scheduled');
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
    expect(none.stderr).toBe('no Scheduled jobs\n');
  });

  it('sorts by age, priority or queue, the limit applied after sorting', async () => {
    await seed();
    expect(await names('--sort', 'age')).toEqual(['e', 'd', 'c', 'b', 'a']);
    expect(await names('--sort', 'priority')).toEqual(['d', 'e', 'b', 'c', 'a']);
    expect(await names('--sort', 'queue')).toEqual(['d', 'c', 'a', 'e', 'b']);
    // The two oldest jobs sort first by queue: a limit is the first n of the sorted list, not of the newest.
    expect(await names('--sort', 'queue', '--limit', '3')).toEqual(['d', 'c', 'a']);
    expect(await names('--sort', 'priority', '--state', 'Pending', '--limit', '1')).toEqual(['e']);
  });

  it('shows a QUEUE column; -o wide adds resources, GPU devices, attempts, age and reason', async () => {
    const jobs = await seed();
    const table = await cli('list', '--sort', 'queue');
    expect(table.code, table.stderr).toBe(0);
    expect(rows(table.stdout).map((r) => r.slice(1, 5))).toEqual([
      ['NAME', 'STATUS', 'QUEUE', 'NODE'],
      ['d', 'Running', 'default', 'n1'],
      ['c', 'Failed', 'team-a', '-'],
      ['a', 'Pending', 'team-a', '-'],
      ['e', 'Pending', 'team-b', '-'],
      ['b', 'Succeeded', 'team-b', '-'],
    ]);
    const wide = await cli('list', '-o', 'wide', '--state', 'Running,Pending');
    expect(wide.code, wide.stderr).toBe(0);
    expect(rows(wide.stdout)).toEqual([
      ['ID', 'NAME', 'STATUS', 'QUEUE', 'PRIORITY', 'NODE', 'CPU', 'MEMORY', 'GPU', 'GPU DEVICES', 'ATTEMPTS', 'AGE', 'REASON'],
      [jobs[0].id, 'e', 'Pending', 'team-b', '5', '-', '0.1', '64Mi', '0', '-', '0', '1m', '-'],
      [jobs[1].id, 'd', 'Running', 'default', '10', 'n1', '2', '1Gi', '2', 'GPU-0,GPU-1', '2', '2m', '-'],
      [jobs[4].id, 'a', 'Pending', 'team-a', '-1', '-', '0.1', '64Mi', '0', '-', '0', '5h', 'waiting for capacity: needs 2 GPUs'],
    ]);
    // wide is a table for every other command.
    const status = await cli('status', jobs[2].id, '-o', 'wide');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^Reason:\s+exited with code 3$/m);
  });

  it('--array lists the tasks of one array, with the other filters', async () => {
    await seed();
    const arrayId = newJobId();
    const other = newJobId();
    const task = (array: string, index: number, state: Job['state']): Job =>
      makeJob({ id: arrayTaskId(array, index), name: `t${index}`, state, array: { id: array, index, count: 3 } });
    for (const j of [task(arrayId, 0, 'Succeeded'), task(arrayId, 1, 'Failed'), task(arrayId, 2, 'Pending'), task(other, 0, 'Failed')]) await putJob(ctx.store, j);
    expect((await names('--array', arrayId)).sort()).toEqual(['t0', 't1', 't2']);
    expect(await names('--array', arrayId, '--state', 'Failed')).toEqual(['t1']);
    expect(await names('--array', other)).toEqual(['t0']);
    const none = await cli('list', '--array', newJobId(), '--state', 'Running');
    expect(none.code, none.stderr).toBe(0);
    expect(none.stderr).toMatch(/^no Running jobs in array [0-9a-z]{13}\n$/);
  });

  it('refuses bad filters with exit 2, naming the flag, reading nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['--state', 'Pending,Sleeping'], /^error: state: "Sleeping" is not a job state \(use Pending, Scheduled, Running, Succeeded, Failed, Cancelled\)\n$/],
      [['--sort', 'name'], /^error: sort: "name" is not a sort order \(use age, priority, queue\)\n$/],
      [['--since', 'a while'], /^error: since: "a while" is not a duration/],
      [['--label', 'team'], /^error: label: "team" is not KEY=VALUE\n$/],
      [['--queue', 'no/slash'], /^error: queue: "no\/slash" must be/],
      [['--array', 'sweep'], /^error: array: "sweep" is not an array id \(titan submit --array prints it\)\n$/],
      [['--array', '0000000000000[7]'], /^error: array: "0000000000000\[7\]" names one task of an array; give the array's id \(0000000000000\)\n$/],
      [['-o', 'yaml'], /^error: output: "yaml" is not an output format \(use table, wide, json\)\n$/],
    ];
    for (const [args, message] of cases) {
      // etcd is never asked: an unreachable one would fail with exit 1.
      const res = await runCli(['list', ...args], { endpoints: '127.0.0.1:1', prefix: ctx.prefix });
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toMatch(message);
    }
  });

  it('--watch prints the list again when a job changes, until it is stopped', async () => {
    const jobs = await seed();
    const watch: RunningCli = start('list', '--watch', '--queue', 'team-a');
    try {
      await watch.waitFor(({ stdout }) => stdout.includes(jobs[4].id));
      expect(rows(watch.stdout()).map((r) => r[1])).toEqual(['NAME', 'c', 'a']);
      // A change outside the query draws nothing; one inside draws the list again.
      await putJob(ctx.store, makeJob({ name: 'elsewhere', queue: 'team-b' }));
      const added = makeJob({ name: 'new', queue: 'team-a' });
      await putJob(ctx.store, added);
      await watch.waitFor(({ stdout }) => stdout.includes(added.id));
      const tables = watch.stdout().trimEnd().split('\n\n');
      expect(tables).toHaveLength(2);
      expect(rows(tables[1]).map((r) => r[1])).toEqual(['NAME', 'new', 'c', 'a']);
      expect(watch.stdout()).not.toMatch(/elsewhere/);
      await putJob(ctx.store, { ...added, state: 'Cancelled' });
      await watch.waitFor(({ stdout }) => stdout.trimEnd().split('\n\n').length === 3);
      expect(rows(watch.stdout().trimEnd().split('\n\n')[2])[1].slice(1, 3)).toEqual(['new', 'Cancelled']);
    } finally {
      watch.child.kill('SIGTERM');
    }
    expect((await watch.result).signal).toBe('SIGTERM');
  });

  it('--watch -o json prints one JSON array a line', async () => {
    const watch = start('list', '--watch', '--state', 'Pending', '-o', 'json');
    try {
      await watch.waitFor(({ stdout }) => stdout === '[]\n');
      const job = makeJob({ name: 'w' });
      await putJob(ctx.store, job);
      await watch.waitFor(({ stdout }) => stdout.split('\n').length === 3);
      expect(watch.stdout().trimEnd().split('\n').map((l) => (JSON.parse(l) as Job[]).map((j) => j.id))).toEqual([[], [job.id]]);
    } finally {
      watch.child.kill('SIGTERM');
    }
    await watch.result;
  });
});
