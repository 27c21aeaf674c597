import { describe, expect, it } from 'vitest';
import { createQueue } from '../../internal/cli/queues.js';
import { arrayTaskId, isTitanError, newJobId, type Job } from '../../pkg/model/index.js';
import { apiHarness } from '../api/api-harness.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { waitFor } from '../harness/wait.js';
import { makeJob, putJob, snapshot } from './fixtures.js';
import { runCli } from './run-cli.js';

/** `titan submit --after` and the API's `after` against etcd: stored, shown, and an unknown job refused with nothing written. */

const suite = etcdSuite('cli-dependencies');
const api = apiHarness(suite);
const cli = (...args: string[]) => runCli(args, { endpoints: suite.etcd.endpoints, prefix: suite.prefix });

describe('titan submit --after', () => {
  it('stores the conditions; status shows them and what the job waits for', async () => {
    const a = makeJob({ state: 'Running', node: 'n1', attempt: 1 });
    const b = makeJob({ state: 'Succeeded', attempt: 1, finishedAt: Date.now() });
    await putJob(suite.store, a);
    await putJob(suite.store, b);
    const res = await cli('submit', '--shell', 'true', '--after', `ok:${a.id},${b.id}`, '--after', `any:${b.id}`);
    expect(res.code, res.stderr).toBe(0);
    const job = (await suite.store.requireJob(res.stdout.trim())).value;
    expect(job).toMatchObject({
      state: 'Pending',
      after: [
        { condition: 'ok', jobs: [a.id, b.id] },
        { condition: 'any', jobs: [b.id] },
      ],
      reason: `Dependency: waits for ok:${a.id},${b.id} any:${b.id}`,
    });
    const status = await cli('status', job.id);
    expect(status.stdout).toMatch(new RegExp(`^After: +ok:${a.id},${b.id} any:${b.id}$`, 'm'));
    expect(status.stdout).toMatch(/^Reason: +Dependency: waits for ok:/m);
  });

  it.each([
    ['one job', ['--shell', 'true']],
    ['a gang', ['--shell', 'true', '--replicas', '3']],
    ['-n', ['-n', '100', '-t', '1']],
  ])('an unknown job (%s) exits 2 and writes nothing', async (_what, args) => {
    const known = makeJob();
    await putJob(suite.store, known);
    const before = await snapshot(suite.store);
    const res = await cli('submit', ...args, '--after', `ok:${known.id}`, '--after', 'any:0000000000zzz');
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/^error: after: no job 0000000000zzz \(see titan list\)/);
    expect(await snapshot(suite.store)).toEqual(before);
  });

  it('bad conditions exit 2 before etcd is touched', async () => {
    const before = await snapshot(suite.store);
    for (const value of ['afterok:x', 'ok:', 'ok:a/b']) {
      const res = await cli('submit', '--shell', 'true', '--after', value);
      expect(res.code, value).toBe(2);
      expect(res.stderr).toMatch(/^error: after: /);
    }
    expect(await snapshot(suite.store)).toEqual(before);
  });

  it('the transaction that creates a job compares its parents exist (no read before it can let a removed one through)', async () => {
    const parent = makeJob({ state: 'Failed', attempt: 1, finishedAt: 1 });
    await putJob(suite.store, parent);
    const child = makeJob({ after: [{ condition: 'any', jobs: [parent.id] }] });
    await suite.store.client.delete().key(suite.store.keys.job(parent.id));
    const before = await snapshot(suite.store);
    const err = await suite.store.createJobs([child]).catch((e: unknown) => e);
    expect(isTitanError(err, 'InvalidInput') && err.message).toMatch(`after: no job ${parent.id}`);
    expect(await snapshot(suite.store)).toEqual(before);
  });
});

describe("the API's POST /v1/jobs takes after too", () => {
  async function post(body: unknown, secret: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${api.server.url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('creates a dependent of a known job, refuses an unknown one with 400 and nothing written, like the CLI through it', async () => {
    await api.start();
    const secret = await api.token({ role: 'submitter' });
    const parent = makeJob();
    await putJob(suite.store, parent);

    const created = await post({ shell: 'true', after: `notok:${parent.id}` }, secret);
    expect(created.status).toBe(201);
    expect((created.body as unknown as Job).after).toEqual([{ condition: 'notok', jobs: [parent.id] }]);

    const before = await snapshot(suite.store);
    const refused = await post([{ shell: 'true' }, { shell: 'true', after: ['ok:0000000000zzz'] }], secret);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: { code: 'InvalidInput', message: expect.stringMatching(/after: no job 0000000000zzz/) } });
    const viaApi = await runCli(['submit', '--shell', 'true', '--after', 'any:0000000000zzz'], { env: { TITAN_ADDR: api.server.url, TITAN_TOKEN: secret } });
    expect(viaApi.code, viaApi.stderr).toBe(2);
    expect(viaApi.stderr).toMatch(/^error: after: no job 0000000000zzz/);
    expect(await snapshot(suite.store)).toEqual(before);
  });

  it("a token limited to queues cannot wait for another team's job: it is refused as unknown", async () => {
    await api.start();
    await createQueue(suite.store, 'team-a', {});
    const secret = await api.token({ role: 'submitter', queue: ['team-a'] });
    const theirs = makeJob();
    const ours = makeJob({ queue: 'team-a' });
    await putJob(suite.store, theirs);
    await putJob(suite.store, ours);
    await waitFor('the API to see both jobs', () => api.server.cache.jobs.has(theirs.id) && api.server.cache.jobs.has(ours.id));
    const before = await snapshot(suite.store);
    const refused = await post({ shell: 'true', queue: 'team-a', after: `any:${ours.id},${theirs.id}` }, secret);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: { message: `after: no job ${theirs.id} (see titan list): a job can only wait for jobs that exist` } });
    expect(await snapshot(suite.store)).toEqual(before);
    expect((await post({ shell: 'true', queue: 'team-a', after: `any:${ours.id}` }, secret)).status).toBe(201);

    // An array is its tasks' queue's.
    const theirArray = newJobId();
    await putJob(suite.store, makeJob({ id: arrayTaskId(theirArray, 0), array: { id: theirArray, index: 0, count: 1 } }));
    await waitFor('the API to see the array', () => api.server.cache.jobs.has(arrayTaskId(theirArray, 0)));
    const array = await post({ shell: 'true', queue: 'team-a', after: `ok:${theirArray}` }, secret);
    expect(array.status).toBe(400);
    expect(array.body).toMatchObject({ error: { message: `after: no job ${theirArray} (see titan list): a job can only wait for jobs that exist` } });
  });
});
