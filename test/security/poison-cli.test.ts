import { describe, expect, it } from 'vitest';
import { newJobId } from '../../pkg/model/index.js';
import { encode } from '../../pkg/store/index.js';
import { makeJob, out, putChunk, putJob } from '../cli/fixtures.js';
import { runCli } from '../cli/run-cli.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { nodeRecord } from '../harness/records.js';

/**
 * Records written around Titan (etcdctl, a compromised node) never make the
 * CLI crash: it prints what it can read, names what it cannot, and exits 1.
 */
const ctx = etcdSuite('poison-cli');
const cli = (...args: string[]) => runCli(args, { endpoints: ctx.etcd.endpoints, prefix: ctx.prefix });

const GARBAGE = Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37]);
const put = (key: string, value: Buffer) => ctx.store.client.put(key).value(value);

function expectOneLineError(stderr: string, pattern: RegExp): void {
  expect(stderr).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe('corrupt records and the CLI', () => {
  it('titan list prints the readable jobs, names each corrupt record, and exits 1', async () => {
    const good = makeJob({ name: 'good' });
    await putJob(ctx.store, good);
    const garbageId = newJobId();
    await put(ctx.store.keys.job(garbageId), GARBAGE);
    const shapeless = newJobId();
    await put(ctx.store.keys.job(shapeless), encode({ id: shapeless, state: 'Pending' }));

    const res = await cli('list');
    expect(res.code, res.stderr).toBe(1);
    expect(res.stdout).toContain(good.id);
    expectOneLineError(res.stderr, /2 records could not be read and were skipped/);
    expect(res.stderr).toContain(`${ctx.store.keys.job(garbageId)} (not MessagePack`);
    expect(res.stderr).toContain(`${ctx.store.keys.job(shapeless)} (/name: Expected required property)`);
    expect(res.stderr).toContain('run titan doctor');

    const json = await cli('list', '--output', 'json');
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as { id: string }[]).map((j) => j.id)).toEqual([good.id]);
  });

  it('titan status of a corrupt job says so in one line and exits 1', async () => {
    const id = newJobId();
    await put(ctx.store.keys.job(id), encode({ id, state: 'Running', resources: 'lots' }));
    const res = await cli('status', id);
    expect(res.code).toBe(1);
    expectOneLineError(res.stderr, new RegExp(`^error: the job record at ${ctx.store.keys.job(id)} is corrupt \\(/[a-z]+: .*\\); it is skipped: see titan doctor\\n$`));
  });

  it('titan nodes shows the readable nodes and names the corrupt one', async () => {
    await put(ctx.store.keys.node('n1'), encode(nodeRecord('n1')));
    await put(ctx.store.keys.node('bad'), GARBAGE);
    await put(ctx.store.keys.assignment('n1', newJobId()), encode({ jobId: 1 }));
    const res = await cli('nodes');
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^n1 /m);
    expectOneLineError(res.stderr, /2 records could not be read.*\/nodes\/bad \(not MessagePack.*\/assign\/n1\//);
  });

  it('titan logs shows a marker where a chunk could not be read, and the rest in order', async () => {
    const job = makeJob({ state: 'Succeeded', node: 'n1', attempt: 1 });
    await putJob(ctx.store, job);
    await putChunk(ctx.store, job.id, 1, 0, [out('first\n')]);
    await put(ctx.store.keys.logChunk('n1', job.id, 1, 1), GARBAGE);
    await putChunk(ctx.store, job.id, 1, 2, [out('third\n')]);
    const res = await cli('logs', job.id);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe('first\nthird\n');
    expect(res.stderr).toMatch(/^\[titan\] a log chunk could not be read and was skipped \(not MessagePack.*\); see titan doctor\n$/);
  });

  it('titan doctor lists every corrupt record with what to do, exits 1, and 0 once they are gone', async () => {
    await putJob(ctx.store, makeJob());
    const badJob = ctx.store.keys.job(newJobId());
    const keys = [
      badJob,
      ctx.store.keys.node('n9'),
      ctx.store.keys.assignment('n9', newJobId()),
      ctx.store.keys.report('n9', newJobId()),
      ctx.store.keys.queue('q'),
      ctx.store.keys.logChunk('n9', newJobId(), 1, 0),
    ];
    for (const key of keys) await put(key, GARBAGE);
    await put(ctx.store.keys.leader(), encode({ id: 7 }));

    const res = await cli('doctor');
    expect(res.code).toBe(1);
    for (const key of [...keys, ctx.store.keys.leader()]) expect(res.stdout).toContain(key);
    expect(res.stdout).toMatch(/the leading master marks the job Failed \(reason Corrupt\)/);
    expect(res.stdout).toMatch(/records checked: 2 jobs, 1 nodes, 1 assign, 1 reports, 1 queues, 1 logs/);
    expectOneLineError(res.stderr, /^error: 7 problems found/);

    const json = await cli('doctor', '--output', 'json');
    expect((JSON.parse(json.stdout) as { findings: unknown[] }).findings).toHaveLength(7);

    for (const key of [...keys, ctx.store.keys.leader()]) await ctx.store.client.delete().key(key);
    const clean = await cli('doctor');
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toBe('no problems found (records checked: 1 jobs, 0 nodes, 0 assign, 0 reports, 0 queues, 0 logs)\n');
  });

  it('lists any number of jobs at the size limit: pages are sized by bytes, not only by count', async () => {
    // 420 jobs of 12 KB of environment each: 5 MB, over gRPC's 4 MiB for one reply.
    const env = { BLOB: 'x'.repeat(12 * 1024) };
    const jobs = Array.from({ length: 420 }, () => makeJob({ env }));
    await ctx.store.createJobs(jobs);
    const res = await cli('list', '--output', 'json');
    expect(res.code, res.stderr).toBe(0);
    expect((JSON.parse(res.stdout) as unknown[]).length).toBe(420);
    const listed = await ctx.store.listJobs();
    expect(listed.items.length).toBe(420);
    const doctor = await cli('doctor');
    expect(doctor.code, doctor.stderr).toBe(0);
  });
});
