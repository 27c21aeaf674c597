import { describe, expect, it } from 'vitest';
import type { Job } from '../../pkg/model/index.js';
import { makeJob, putJob, snapshot } from './fixtures.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { runCli } from './run-cli.js';

const ctx = etcdSuite('cli-retry');

const cli = (...args: string[]) => runCli(args, { endpoints: ctx.etcd.endpoints, prefix: ctx.prefix });

describe('retry policy flags', () => {
  it('stores --retries and --timeout on the job', async () => {
    const res = await cli('submit', '--shell', 'true', '--retries', '2', '--timeout', '1m30s', '--output', 'json');
    expect(res.code, res.stderr).toBe(0);
    const job = JSON.parse(res.stdout) as Job;
    expect(job).toMatchObject({ retries: 2, timeoutMs: 90_000 });
  });

  it.each([
    [['--retries', '-1'], /retries/],
    [['--retries', 'many'], /retries/],
    [['--timeout', '500ms'], /timeout: must be at least 1s/],
    [['--timeout', 'soon'], /timeout/],
  ])('rejects %j with exit 2 and writes nothing', async (flags, message) => {
    const before = await snapshot(ctx.store);
    const res = await cli('submit', '--shell', 'true', ...flags);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
    expect(await snapshot(ctx.store)).toEqual(before);
  });
});

describe('titan retry', () => {
  it('puts a Failed job back in the queue with its history and fresh budgets', async () => {
    const failed = makeJob({
      state: 'Failed', attempt: 3, exitCode: 1, node: 'n1', finishedAt: 5, failureCount: 2, retries: 2,
      history: [{ attempt: 1, finishedAt: 1, state: 'Failed' }, { attempt: 2, finishedAt: 2, state: 'Failed' }, { attempt: 3, finishedAt: 5, state: 'Failed' }],
    });
    await putJob(ctx.store, failed);
    const res = await cli('retry', failed.id);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/Pending again \(attempt 4 next\)/);
    const job = (await ctx.store.requireJob(failed.id)).value;
    expect(job).toMatchObject({ state: 'Pending', attempt: 3, retries: 2 });
    expect(job.failureCount).toBeUndefined();
    expect(job.node).toBeUndefined();
    expect(job.history).toHaveLength(3);
  });

  it('refuses a job that has not failed, with exit 1 and no write', async () => {
    const pending = makeJob();
    await putJob(ctx.store, pending);
    const before = await snapshot(ctx.store);
    const res = await cli('retry', pending.id);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/only Failed or Cancelled jobs can be retried/);
    expect(await snapshot(ctx.store)).toEqual(before);
  });
});
