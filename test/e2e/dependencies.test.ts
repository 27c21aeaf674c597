import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Master } from '../../internal/master/index.js';
import { arrayTaskId, type Job, type JobState } from '../../pkg/model/index.js';
import { runCli } from '../cli/run-cli.js';
import { clusterSuite, waitFor, type SmallCluster, type TestWorker } from '../worker/helpers.js';

/**
 * `titan submit --after` on a real cluster: etcd, an in-process master and
 * shell worker, jobs submitted with the CLI. What ran when is read back from
 * etcd: a dependent's start is never before its parent's end.
 */

let suite: ReturnType<typeof clusterSuite>;
let cluster: SmallCluster | undefined;
let master: Master | undefined;

async function start(): Promise<TestWorker> {
  cluster = await suite.start({ executors: 'shell', cpu: '4' });
  master = await cluster.startMaster();
  return cluster.worker;
}

async function restartMaster(): Promise<void> {
  await cluster?.stopMaster();
  master = await cluster?.startMaster();
}

const cli = (...args: string[]) => runCli(args, { endpoints: cluster?.endpoints ?? '', prefix: cluster?.worker.config.prefix, timeoutMs: 60_000 });

async function submit(...args: string[]): Promise<string> {
  const res = await cli('submit', ...args);
  expect(res.code, res.stderr).toBe(0);
  return res.stdout.trim();
}

async function job(id: string): Promise<Job> {
  return (await (cluster as SmallCluster).store.requireJob(id)).value;
}

function until(id: string, states: JobState[], timeoutMs = 30_000): Promise<Job> {
  return waitFor(`job ${id} to be ${states.join(' or ')}`, async () => {
    const j = await job(id);
    return states.includes(j.state) ? j : undefined;
  }, timeoutMs);
}

/** A shell script that runs until `open()`: a parent that cannot end before the test has looked (a loaded machine submits slowly). */
function gated(): { script: string; open: () => void } {
  const gate = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'titan-deps-')), 'go');
  return { script: `while [ ! -e ${gate} ]; do sleep 0.1; done`, open: () => fs.writeFileSync(gate, '') };
}

/** A dependent started after its parent ended, as etcd recorded both. */
function expectAfter(parent: Job, child: Job): void {
  expect(child.startedAt, 'the dependent started').toBeDefined();
  expect(parent.finishedAt, 'the parent ended').toBeDefined();
  expect(child.scheduledAt ?? 0).toBeGreaterThanOrEqual(parent.finishedAt ?? Infinity);
  expect(child.startedAt ?? 0).toBeGreaterThanOrEqual(parent.finishedAt ?? Infinity);
}

describe('titan submit --after', () => {
  suite = clusterSuite('dependencies');

  it('ok: runs only after its parent succeeded, and waits Pending with reason Dependency until then', async () => {
    await start();
    const parent = gated();
    const a = await submit('--shell', parent.script);
    const b = await submit('--shell', 'echo after', '--after', `ok:${a}`);
    await until(a, ['Running']);
    const waiting = await job(b);
    expect(waiting).toMatchObject({ state: 'Pending', reason: `Dependency: waits for ok:${a}` });
    parent.open();
    const child = await until(b, ['Succeeded']);
    expectAfter(await job(a), child);
  }, 60_000);

  it('ok: a failed parent cancels it with DependencyNeverSatisfied (titan status says so); notok and any run', async () => {
    await start();
    const a = await submit('--shell', 'sleep 1; exit 3');
    const ok = await submit('--shell', 'true', '--after', `ok:${a}`);
    const notok = await submit('--shell', 'true', '--after', `notok:${a}`);
    const any = await submit('--shell', 'true', '--after', `any:${a}`);
    const cancelled = await until(ok, ['Cancelled', 'Succeeded', 'Failed']);
    expect(cancelled).toMatchObject({ state: 'Cancelled', reason: `DependencyNeverSatisfied: ok:${a}, but job ${a} Failed`, attempt: 0 });
    const status = await cli('status', ok);
    expect(status.stdout).toMatch(/^State: +Cancelled$/m);
    expect(status.stdout).toMatch(new RegExp(`^Reason: +DependencyNeverSatisfied: ok:${a}, but job ${a} Failed$`, 'm'));
    const parent = await job(a);
    expect(parent.state).toBe('Failed');
    for (const id of [notok, any]) expectAfter(parent, await until(id, ['Succeeded']));
    // titan retry puts it back; it waits for the parent as it is now, still Failed: cancelled again.
    const retried = await cli('retry', ok);
    expect(retried.code, retried.stderr).toBe(0);
    const again = await waitFor('the retried job to be cancelled again', async () => {
      const j = await job(ok);
      return j.state === 'Cancelled' && (j.finishedAt ?? 0) > (cancelled.finishedAt ?? 0) ? j : undefined;
    });
    expect(again).toMatchObject({ reason: cancelled.reason, attempt: 0 });
  }, 60_000);

  it('notok: a succeeded parent cancels it; a chain behind it is cancelled too; a parent that ended before the submit is resolved at once', async () => {
    await start();
    const a = await submit('--shell', 'true');
    await until(a, ['Succeeded']);
    const notok = await submit('--shell', 'true', '--after', `notok:${a}`);
    const behind = await submit('--shell', 'true', '--after', `any:${notok}`, '--after', `ok:${a}`);
    const ok = await submit('--shell', 'true', '--after', `ok:${a}`);
    expect(await until(notok, ['Cancelled', 'Succeeded'])).toMatchObject({ state: 'Cancelled', reason: `DependencyNeverSatisfied: notok:${a}, but job ${a} Succeeded` });
    // any: a cancelled parent is an ended one.
    expectAfter(await job(notok), await until(behind, ['Succeeded']));
    expect((await until(ok, ['Succeeded'])).state).toBe('Succeeded');
  }, 60_000);

  it('waits across a master restart: the new master rebuilds the index, reading the parents at start-up', async () => {
    await start();
    const parentA = gated();
    const a = await submit('--shell', parentA.script);
    const b = await submit('--shell', 'true', '--after', `ok:${a}`);
    await until(a, ['Running']);
    await restartMaster();
    expect((await job(b)).state).toBe('Pending');
    parentA.open();
    const child = await until(b, ['Succeeded']);
    expectAfter(await job(a), child);

    // With no master, a parent ends (the test worker's own report folder records it) and dependents are
    // submitted: the next master reads their parents at start-up.
    const parentC = gated();
    const c = await submit('--shell', parentC.script);
    await until(c, ['Running']);
    await cluster?.stopMaster();
    master = undefined;
    const d = await submit('--shell', 'true', '--after', `ok:${c}`);
    const e = await submit('--shell', 'true', '--after', `ok:${a}`);
    const f = await submit('--shell', 'true', '--after', `notok:${a}`);
    parentC.open();
    await until(c, ['Succeeded']);
    expect((await job(d)).state).toBe('Pending');
    await restartMaster();
    expectAfter(await until(c, ['Succeeded']), await until(d, ['Succeeded']));
    expectAfter(await job(a), await until(e, ['Succeeded']));
    expect(await until(f, ['Cancelled'])).toMatchObject({ reason: `DependencyNeverSatisfied: notok:${a}, but job ${a} Succeeded` });
  }, 90_000);

  it('an array id stands for all of its tasks, ID[i] for one; the index is rebuilt from the tasks across a master restart', async () => {
    await start();
    const gate = gated();
    // The tasks wait for the gate, so every dependent is in before any task ends; task 1 fails.
    const array = await submit('--shell', `${gate.script}; [ "$TITAN_ARRAY_INDEX" -ne 1 ]`, '--array', '0-2');
    const good = await submit('--shell', gate.script, '--array', '0-1');
    const ok = await submit('--shell', 'true', '--after', `ok:${array}`);
    const notok = await submit('--shell', 'true', '--after', `notok:${array}`);
    const any = await submit('--shell', 'true', '--after', `any:${array}`);
    const one = await submit('--shell', 'true', '--after', `ok:${array}[0]`);
    const whole = await submit('--shell', 'true', '--after', `ok:${good}`);
    expect(await job(any)).toMatchObject({ state: 'Pending', reason: `Dependency: waits for any:${array}` });
    await restartMaster();
    gate.open();
    const tasks = await Promise.all([0, 1, 2].map((i) => until(arrayTaskId(array, i), ['Succeeded', 'Failed'])));
    expect(tasks.map((t) => t.state)).toEqual(['Succeeded', 'Failed', 'Succeeded']);
    const arrayEnd = { ...tasks[0], finishedAt: Math.max(...tasks.map((t) => t.finishedAt ?? Infinity)) };
    for (const id of [notok, any]) expectAfter(arrayEnd, await until(id, ['Succeeded']));
    expect(await until(ok, ['Cancelled'])).toMatchObject({ reason: `DependencyNeverSatisfied: ok:${array}, but job ${array} Failed` });
    expectAfter(tasks[0], await until(one, ['Succeeded']));
    const goodTasks = await Promise.all([0, 1].map((i) => until(arrayTaskId(good, i), ['Succeeded'])));
    expectAfter({ ...goodTasks[0], finishedAt: Math.max(...goodTasks.map((t) => t.finishedAt ?? Infinity)) }, await until(whole, ['Succeeded']));

    // An array with a task removed cannot be waited for: its outcome is no longer known. Nothing is written.
    const store = (cluster as SmallCluster).store;
    await store.client.delete().key(store.keys.job(arrayTaskId(good, 1)));
    const jobsBefore = (await store.listJobs()).items.length;
    const partial = await cli('submit', '--shell', 'true', '--after', `ok:${good}`);
    expect(partial.code).toBe(2);
    expect(partial.stderr).toBe(`error: after: array ${good} has 1 of its 2 tasks: an array can be waited for only while all of its tasks are there\n`);
    expect((await store.listJobs()).items.length).toBe(jobsBefore);
  }, 90_000);

  it('a failed parent with 200 dependents (submit -n) cancels them all, in batches', async () => {
    await start();
    const a = await submit('--shell', 'sleep 1; exit 1');
    const res = await cli('submit', '-n', '200', '-t', '1', '--after', `ok:${a}`);
    expect(res.code, res.stderr).toBe(0);
    const dependents = async (): Promise<Job[]> =>
      (await (cluster as SmallCluster).store.listJobs()).items.map((i) => i.value).filter((j) => j.after !== undefined);
    const all = await waitFor('200 dependents cancelled', async () => {
      const jobs = await dependents();
      return jobs.length === 200 && jobs.every((j) => j.state === 'Cancelled') ? jobs : undefined;
    }, 60_000);
    expect(new Set(all.map((j) => j.reason))).toEqual(new Set([`DependencyNeverSatisfied: ok:${a}, but job ${a} Failed`]));
    expect(all.every((j) => j.attempt === 0 && j.startedAt === undefined)).toBe(true);
  }, 90_000);

  it("retention keeps a job that pending jobs wait for, whatever its age", async () => {
    await start();
    const a = await submit('--shell', 'true');
    const c = await submit('--shell', 'sleep 30');
    await until(a, ['Succeeded']);
    const b = await submit('--shell', 'true', '--after', `ok:${a},${c}`);
    await waitFor('the master to know b waits', async () => (master?.state.dependencies.isParent(a) ? true : undefined));
    const other = await submit('--shell', 'true');
    await until(other, ['Succeeded']);
    await master?.retention.sweep(Date.now() + 365 * 24 * 3_600_000);
    expect(await (cluster as SmallCluster).store.getJob(other)).toBeUndefined();
    expect((await job(a)).state).toBe('Succeeded');
    expect((await job(b)).state).toBe('Pending');
  }, 60_000);
});
