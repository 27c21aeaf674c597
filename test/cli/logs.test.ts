import { describe, expect, it } from 'vitest';
import type { Job } from '../../pkg/model/index.js';
import { err, makeJob, out, putChunk, putJob, sleep } from './fixtures.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { runCli, startCli } from './run-cli.js';

const ctx = etcdSuite('cli-logs');
const cli = (...args: string[]) => runCli(args, { endpoints: ctx.etcd.endpoints, prefix: ctx.prefix });
const follow = (...args: string[]) => startCli(args, { endpoints: ctx.etcd.endpoints, prefix: ctx.prefix, timeoutMs: 45_000 });


function running(overrides: Partial<Job> = {}): Job {
  return makeJob({ state: 'Running', node: 'n1', attempt: 1, startedAt: Date.now(), ...overrides });
}

const lines = (from: number, to: number, tag = 'line'): string =>
  Array.from({ length: to - from }, (_, i) => `${tag} ${from + i}\n`).join('');

describe('titan logs', () => {
  it('prints the latest attempt: stdout to stdout, stderr to stderr, in chunk order', async () => {
    const job = running({ attempt: 2, history: [{ attempt: 1, node: 'n0', finishedAt: Date.now(), state: 'Failed' }] });
    await putJob(ctx.store, job);
    // Each attempt's output is under the node that ran it.
    await putChunk(ctx.store, job.id, 1, 0, [out('old attempt\n')], 'n0');
    // Written out of order on purpose: keys, not write order, decide.
    await putChunk(ctx.store, job.id, 2, 1, [out('second\n'), err('warn 1\n')]);
    await putChunk(ctx.store, job.id, 2, 0, [out('first\n'), err('warn 0\n')]);
    await putChunk(ctx.store, job.id, 2, 2, [out('third\n')]);

    const res = await cli('logs', job.id);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe('first\nsecond\nthird\n');
    expect(res.stderr).toBe('warn 0\nwarn 1\n');

    const first = await cli('logs', job.id, '--attempt', '1');
    expect(first.stdout).toBe('old attempt\n');

    const json = await cli('logs', job.id, '-o', 'json');
    expect(json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual([
      out('first\n'),
      err('warn 0\n'),
      out('second\n'),
      err('warn 1\n'),
      out('third\n'),
    ]);
  });

  it('prints nothing for a job that has not run, and fails for an unknown job', async () => {
    const job = makeJob();
    await putJob(ctx.store, job);
    const res = await cli('logs', job.id);
    expect(res).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const missing = await cli('logs', '0000000000000');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: no job 0000000000000/);
  });
});

describe('titan logs -f', () => {
  it('prints lines as chunks arrive and exits when the job succeeds, without duplicates or gaps', async () => {
    const job = running();
    await putJob(ctx.store, job);
    for (let seq = 0; seq < 3; seq++) await putChunk(ctx.store, job.id, 1, seq, [out(lines(seq * 2, seq * 2 + 2))]);

    const run = follow('logs', job.id, '-f');
    await run.waitFor(({ stdout }) => stdout === lines(0, 6));

    for (let seq = 3; seq < 30; seq++) {
      await putChunk(ctx.store, job.id, 1, seq, [out(lines(seq * 2, seq * 2 + 1)), err(`e${seq}\n`), out(lines(seq * 2 + 1, seq * 2 + 2))]);
      if (seq % 5 === 0) await sleep(50);
    }
    await run.waitFor(({ stdout }) => stdout.endsWith(lines(58, 60)));
    // A rewrite of an already printed chunk (a worker retrying a write) must not print again.
    await putChunk(ctx.store, job.id, 1, 29, [out(lines(58, 60))]);
    // Chunks written right before the final state may reach the follower after it: the closing read catches them.
    await putChunk(ctx.store, job.id, 1, 30, [out('last\n')]);
    await putJob(ctx.store, { ...job, state: 'Succeeded', exitCode: 0, finishedAt: Date.now() });
    await putChunk(ctx.store, job.id, 1, 31, [out('straggler\n')]);

    const res = await run.result;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.startsWith(lines(0, 60) + 'last\n')).toBe(true);
    expect(['', 'straggler\n']).toContain(res.stdout.slice((lines(0, 60) + 'last\n').length));
    expect(res.stderr).toBe(Array.from({ length: 27 }, (_, i) => `e${i + 3}\n`).join(''));
  });

  it('holds back a chunk that arrives ahead of a missing one', async () => {
    const job = running();
    await putJob(ctx.store, job);
    await putChunk(ctx.store, job.id, 1, 0, [out('a\n')]);
    const run = follow('logs', job.id, '-f');
    await run.waitFor(({ stdout }) => stdout === 'a\n');
    await putChunk(ctx.store, job.id, 1, 2, [out('c\n')]);
    await putChunk(ctx.store, job.id, 1, 1, [out('b\n')]);
    await run.waitFor(({ stdout }) => stdout === 'a\nb\nc\n');
    // A gap that never fills is given up on after a moment, in order.
    await putChunk(ctx.store, job.id, 1, 4, [out('e\n')]);
    await run.waitFor(({ stdout }) => stdout === 'a\nb\nc\ne\n');
    await putJob(ctx.store, { ...job, state: 'Failed', exitCode: 1, finishedAt: Date.now() });
    const res = await run.result;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe('a\nb\nc\ne\n');
  });

  it('waits for a pending job to start, then follows it to the end', async () => {
    const job = makeJob();
    await putJob(ctx.store, job);
    // -v: the follower says when it has read the job as not started and waits for it.
    const run = follow('logs', job.id, '-f', '-v');
    await run.waitFor(({ stderr }) => stderr.includes(`waiting for job ${job.id} to start (Pending)`));
    expect(run.child.exitCode).toBeNull();
    await putJob(ctx.store, { ...job, state: 'Scheduled', node: 'n1', attempt: 1 });
    await putChunk(ctx.store, job.id, 1, 0, [out('hello\n')]);
    await putJob(ctx.store, { ...job, state: 'Running', node: 'n1', attempt: 1 });
    await run.waitFor(({ stdout }) => stdout === 'hello\n');
    await putChunk(ctx.store, job.id, 1, 1, [out('world\n')]);
    await putJob(ctx.store, { ...job, state: 'Succeeded', node: 'n1', attempt: 1, exitCode: 0 });
    const res = await run.result;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe('hello\nworld\n');
  });

  it('moves on to a new attempt when the job is placed again', async () => {
    const job = running();
    await putJob(ctx.store, job);
    await putChunk(ctx.store, job.id, 1, 0, [out('try 1\n')]);
    const run = follow('logs', job.id, '-f');
    await run.waitFor(({ stdout }) => stdout === 'try 1\n');
    await putChunk(ctx.store, job.id, 1, 1, [out('try 1 more\n')]);
    await putJob(ctx.store, { ...job, state: 'Pending', node: undefined });
    await putJob(ctx.store, { ...job, state: 'Running', node: 'n2', attempt: 2 });
    await putChunk(ctx.store, job.id, 2, 0, [out('try 2\n')], 'n2');
    await run.waitFor(({ stdout }) => stdout.endsWith('try 2\n'));
    await putJob(ctx.store, { ...job, state: 'Succeeded', node: 'n2', attempt: 2, exitCode: 0 });
    const res = await run.result;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe('try 1\ntry 1 more\ntry 2\n');
  });

  it('exits at once for a job that already ended, and for a job cancelled before it started', async () => {
    const done = running({ state: 'Succeeded', exitCode: 0 });
    await putJob(ctx.store, done);
    await putChunk(ctx.store, done.id, 1, 0, [out('done\n')]);
    const res = await cli('logs', done.id, '-f');
    expect(res).toMatchObject({ code: 0, stdout: 'done\n' });

    const pending = makeJob();
    await putJob(ctx.store, pending);
    const run = follow('logs', pending.id, '-f', '-v');
    await run.waitFor(({ stderr }) => stderr.includes(`waiting for job ${pending.id} to start`));
    expect((await cli('cancel', pending.id)).code).toBe(0);
    const cancelled = await run.result;
    expect(cancelled).toMatchObject({ code: 0, stdout: '' });
  });
});
