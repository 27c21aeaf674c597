import { describe, expect, it } from 'vitest';
import type { Job } from '../../pkg/model/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { makeJob, putJob, snapshot } from './fixtures.js';
import { runCli, startCli } from './run-cli.js';

const ctx = etcdSuite('cli-wait');
const cli = (...args: string[]) => runCli(args, { endpoints: ctx.etcd.endpoints, prefix: ctx.prefix });
const start = (...args: string[]) => startCli(args, { endpoints: ctx.etcd.endpoints, prefix: ctx.prefix });

describe('titan wait', () => {
  const ended = (job: Job, state: Job['state'], exitCode?: number): Job => ({
    ...job, state, node: 'n1', attempt: 1, startedAt: Date.now() - 1000, finishedAt: Date.now(), ...(exitCode !== undefined ? { exitCode } : {}),
  });

  it('exits 0 once every job succeeded, printing how each ended', async () => {
    const [one, two] = [makeJob({ name: 'one' }), makeJob({ name: 'two' })];
    for (const j of [one, two]) await putJob(ctx.store, j);
    const run = start('wait', one.id, two.id);
    await putJob(ctx.store, ended(two, 'Succeeded', 0));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(run.child.exitCode).toBeNull(); // one has not ended
    await putJob(ctx.store, ended(one, 'Succeeded', 0));
    const res = await run.result;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^job ${one.id} Succeeded \\(exit 0\\) on n1 after [\\d.]+s\\njob ${two.id} Succeeded \\(exit 0\\) on n1`));
    expect(res.stderr).toBe('');
  });

  it('exits with the code of the first job (as named) that did not succeed; -o json prints every final state', async () => {
    const jobs = [makeJob({ name: 'ok' }), makeJob({ name: 'cancelled' }), makeJob({ name: 'three' })];
    await putJob(ctx.store, ended(jobs[0], 'Succeeded', 0));
    await putJob(ctx.store, { ...jobs[1], state: 'Cancelled', finishedAt: Date.now() });
    await putJob(ctx.store, ended(jobs[2], 'Failed', 3));
    const res = await cli('wait', jobs[0].id, jobs[2].id, jobs[1].id, '-o', 'json');
    expect(res.code, res.stderr).toBe(3);
    expect((JSON.parse(res.stdout) as Job[]).map((j) => [j.name, j.state, j.exitCode])).toEqual([
      ['ok', 'Succeeded', 0],
      ['three', 'Failed', 3],
      ['cancelled', 'Cancelled', undefined],
    ]);
    expect((await cli('wait', jobs[1].id, jobs[2].id)).code).toBe(1); // cancelled: 1, as submit --wait
  });

  it('follows a job until it fails, with the exit code --wait gives', async () => {
    const job = makeJob({ name: 'fails' });
    await putJob(ctx.store, job);
    const run = start('wait', job.id, '-v');
    await putJob(ctx.store, { ...job, state: 'Running', node: 'n1', attempt: 1, startedAt: Date.now() });
    await run.waitFor(({ stderr }) => stderr.includes('is Running on n1'));
    await putJob(ctx.store, ended(job, 'Failed', 42));
    const res = await run.result;
    expect(res.code).toBe(42);
    expect(res.stdout).toMatch(new RegExp(`^job ${job.id} Failed \\(exit 42\\) on n1`));
  });

  it('an unknown id is NotFound, exit 1 as for status, before any waiting', async () => {
    const pending = makeJob();
    await putJob(ctx.store, pending);
    const before = await snapshot(ctx.store);
    const res = await cli('wait', pending.id, '0000000000000');
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toBe('error: no job 0000000000000 (see titan list)\n');
    const json = await cli('wait', '0000000000000', '-o', 'json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr).error.code).toBe('NotFound');
    expect(await snapshot(ctx.store)).toEqual(before);
    const usage = await cli('wait');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe("error: missing required argument 'ids'\n");
  });
});
