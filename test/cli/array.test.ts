import { beforeAll, describe, expect, it } from 'vitest';
import { readArrayTasks, type ArrayStatusDocument } from '../../internal/cli/arrays.js';
import { EtcdCluster } from '../../internal/cli/etcd-cluster.js';
import { planSubmission, type ArraySubmission } from '../../internal/cli/submit.js';
import { arrayTaskId, type Job } from '../../pkg/model/index.js';
import { records, startInformer, Store } from '../../pkg/store/index.js';
import { randomPrefix } from '../harness/wait.js';
import { waitFor } from '../worker/helpers.js';
import { snapshot } from './fixtures.js';
import { cliClusterSuite } from './cli-cluster.js';
import { runCli, type CliResult } from './run-cli.js';

/**
 * Job arrays end to end (docs/arrays.md): the real CLI, through etcd and
 * through a master's HTTP API, against one cluster (etcd, a master serving
 * the API, a shell worker).
 */

const cluster = cliClusterSuite('cli-array');
let admin: string;

const viaEtcd = (args: readonly string[], on = cluster.prefix): Promise<CliResult> => runCli(args, { endpoints: cluster.etcd.endpoints, prefix: on, timeoutMs: 60_000 });
const viaApi = (args: readonly string[]): Promise<CliResult> =>
  runCli(args, { endpoints: cluster.noEtcdAddress, env: { TITAN_ADDR: cluster.api.url, TITAN_TOKEN: admin }, timeoutMs: 60_000 });
const json = <T>(r: CliResult): T => JSON.parse(r.stdout) as T;

async function submitArray(args: readonly string[], through = viaEtcd): Promise<ArraySubmission> {
  const res = await through(['submit', ...args, '-o', 'json']);
  expect(res.code, res.stderr).toBe(0);
  return json<ArraySubmission>(res);
}

/** The tasks as etcd has them, once `done` holds for them. */
async function tasksWhen(arrayId: string, what: string, done: (tasks: Job[]) => boolean, timeoutMs = 60_000): Promise<Job[]> {
  return waitFor(
    what,
    async () => {
      const tasks = (await readArrayTasks(cluster.store, arrayId)).map((t) => t.value);
      return done(tasks) ? tasks : undefined;
    },
    timeoutMs,
    200,
  );
}

/** The same read through etcd and through the API: equal output (the API's cache may need a moment to catch up). */
async function sameRead(args: readonly string[], timeoutMs = 30_000): Promise<CliResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [e, a] = await Promise.all([viaEtcd(args), viaApi(args)]);
    if ((e.code === a.code && e.stdout === a.stdout && e.stderr === a.stderr) || Date.now() > deadline) {
      expect({ code: a.code, stdout: a.stdout, stderr: a.stderr }, `titan ${args.join(' ')}`).toEqual({ code: e.code, stdout: e.stdout, stderr: e.stderr });
      return e;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

beforeAll(async () => {
  admin = await cluster.token({ role: 'admin', name: 'arrays' });
});

describe('titan submit --array', () => {
  it('refuses bad input with exit 2 and writes nothing, through etcd and through the API alike', async () => {
    const empty = randomPrefix();
    const quiet = new Store({ endpoints: [cluster.etcd.endpoints], prefix: empty });
    try {
      const before = await snapshot(quiet);
      const cases: [string[], RegExp][] = [
        [['--array', '5-2'], /array: "5-2" runs backwards/],
        [['--array', '0-99%0'], /%0 would never run a task/],
        [['--array', '0-9:0'], /the step must be 1 or more/],
        [['--array', '0-100000'], /holds 100001 tasks; an array holds at most 100000/],
        [['--array', '0-3', '--replicas', '2'], /--array and --replicas do not go together/],
        [['--array', 'ten'], /is not an index range/],
        [['--array', '0-3', '-n', '2'], /--array submits one array/],
        [['--array', '0-3', '--wait'], /--wait follows one job/],
      ];
      for (const [flags, message] of cases) {
        const res = await viaEtcd(['submit', '--shell', 'true', ...flags], empty);
        expect(res.code, `${flags.join(' ')}: ${res.stderr}`).toBe(2);
        expect(res.stderr).toMatch(message);
        const remote = await viaApi(['submit', '--shell', 'true', ...flags]);
        expect(remote.code, `${flags.join(' ')} through the API: ${remote.stderr}`).toBe(2);
        expect(remote.stderr).toBe(res.stderr);
      }
      expect(await snapshot(quiet)).toEqual(before);
    } finally {
      quiet.close();
    }
  }, 120_000);

  it('writes a 10,000-task array in batched transactions, as fast as titan submit -n writes as many jobs', async () => {
    const aside = new Store({ endpoints: [cluster.etcd.endpoints], prefix: randomPrefix() });
    try {
      const asideCluster = new EtcdCluster(aside);
      // The absolute figure (well under a second) is the bench's (npm run bench: arrays); this shared test machine
      // may be loaded, so here the array is timed against the same number of jobs through submit -n, on the same etcd.
      const time = async (run: () => Promise<unknown>): Promise<number> => {
        const started = performance.now();
        await run();
        return performance.now() - started;
      };
      const bulkMs = await time(() => asideCluster.submitBulk(planSubmission({ shell: 'true', count: '10000' })));
      let submitted: ArraySubmission | undefined;
      const arrayMs = await time(async () => (submitted = await asideCluster.submitArray(planSubmission({ shell: 'true', array: '0-9999', name: 'big' }))));
      expect(submitted).toMatchObject({ count: 10_000, first: 0, last: 9999, step: 1, max: null, name: 'big' });
      expect(arrayMs, `array ${Math.round(arrayMs)} ms, submit -n ${Math.round(bulkMs)} ms`).toBeLessThan(2 * bulkMs + 250);
      const id = submitted?.id ?? '';
      const stored = await readArrayTasks(aside, id);
      expect(stored).toHaveLength(10_000);
      expect(stored[9999].value.id).toBe(arrayTaskId(id, 9999));
      // Batches of 64 jobs per transaction, not one transaction per task.
      expect(new Set(stored.map((t) => t.createRevision)).size).toBe(Math.ceil(10_000 / 64));
      const status = await runCli(['status', id, '-o', 'json'], { endpoints: cluster.etcd.endpoints, prefix: aside.keys.root });
      expect(json<ArrayStatusDocument>(status)).toMatchObject({ id, count: 10_000, tasks: { Pending: 10_000 }, failedIndexes: [] });
    } finally {
      aside.close();
    }
  }, 120_000);
});

describe('an array on a real master and worker', () => {
  it('runs each task with its index; logs ID[i]; status counts the states and names the failed indexes; retry --failed reruns only those', async () => {
    const script = 'echo "index=$TITAN_ARRAY_INDEX of $TITAN_ARRAY_COUNT in $TITAN_ARRAY_ID"; [ "$TITAN_ARRAY_INDEX" -ne 2 ] && [ "$TITAN_ARRAY_INDEX" -ne 4 ]';
    const text = await viaEtcd(['submit', '--shell', script, '--array', '0-5', '--name', 'sweep']);
    expect(text.code, text.stderr).toBe(0);
    const id = text.stdout.trim();
    expect(text.stderr).toBe(`array ${id}: 6 tasks, indexes 0-5; see titan status ${id}\n`);
    await tasksWhen(id, 'every task ended', (tasks) => tasks.length === 6 && tasks.every((t) => ['Succeeded', 'Failed'].includes(t.state)));

    for (const i of [0, 3, 5]) expect((await sameRead(['logs', `${id}[${i}]`])).stdout).toBe(`index=${i} of 6 in ${id}\n`);
    const whole = await sameRead(['logs', id]);
    expect(whole.code).toBe(2);
    expect(whole.stderr).toBe(`error: id: ${id} is an array of 6 tasks: name one task, e.g. titan logs ${id}[0]\n`);

    const status = json<ArrayStatusDocument>(await sameRead(['status', id, '-o', 'json']));
    expect(status).toEqual({
      id,
      name: 'sweep',
      queue: 'default',
      createdAt: expect.any(Number) as number,
      count: 6,
      max: null,
      tasks: { Pending: 0, Scheduled: 0, Running: 0, Succeeded: 4, Failed: 2, Cancelled: 0 },
      failedIndexes: [2, 4],
    });
    const failedTasks = json<Job[]>(await sameRead(['list', '--array', id, '--state', 'Failed', '-o', 'json']));
    expect(failedTasks.map((t) => t.array?.index).sort()).toEqual([2, 4]);
    const human = await viaEtcd(['status', id]);
    expect(human.stdout).toMatch(/^Failed:\s+2$/m);
    expect(human.stdout).toMatch(/^Failed indexes:\s+2,4$/m);
    const task = json<Job & { status: string }>(await sameRead(['status', `${id}[4]`, '-o', 'json']));
    expect(task).toMatchObject({ id: arrayTaskId(id, 4), status: 'Failed', exitCode: 1, array: { id, index: 4, count: 6 } });
    expect((await viaEtcd(['status', `${id}[4]`])).stdout).toMatch(new RegExp(`^Array:\\s+${id} task 4 of 6; see titan status ${id}$`, 'm'));
    const unknown = await sameRead(['status', `${id}[6]`]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(`error: no job ${id}[6] (see titan list)\n`);
    const malformed = await sameRead(['status', `${id}[x]`]);
    expect(malformed.code).toBe(2);

    const usage = await sameRead(['retry', id]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/is an array: titan retry \S+ --failed requeues its Failed tasks/);

    const retried = await viaApi(['retry', id, '--failed']);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toBe(`array ${id}: 2 failed tasks are Pending again (indexes 2,4)\n`);
    const after = await tasksWhen(id, 'the retried tasks to end again', (tasks) => tasks.filter((t) => t.attempt === 2 && t.state === 'Failed').length === 2);
    expect(after.map((t) => [t.array?.index, t.attempt, t.state])).toEqual([
      [0, 1, 'Succeeded'],
      [1, 1, 'Succeeded'],
      [2, 2, 'Failed'],
      [3, 1, 'Succeeded'],
      [4, 2, 'Failed'],
      [5, 1, 'Succeeded'],
    ]);
    expect((await viaEtcd(['logs', `${id}[2]`, '--attempt', '2'])).stdout).toBe(`index=2 of 6 in ${id}\n`);

    const again = await viaEtcd(['retry', id, '--failed', '-o', 'json']);
    expect(json(again)).toEqual({ id, retried: [2, 4] });
    await tasksWhen(id, 'the third attempts to end', (tasks) => tasks.filter((t) => t.attempt === 3 && t.state === 'Failed').length === 2);
    const none = await viaEtcd(['retry', `${id}[0]`]);
    expect(none.code).toBe(1); // a Succeeded task: nothing to retry
  }, 180_000);

  it('cancel ID cancels every task that has not ended: pending ones at once, running ones through the worker', async () => {
    const array = await submitArray(['--shell', 'sleep 60', '--array', '0-5%2'], viaApi);
    expect(array).toMatchObject({ count: 6, max: 2 });
    await tasksWhen(array.id, 'two tasks running', (tasks) => tasks.filter((t) => t.state === 'Running').length === 2);
    // The others wait for one of them to end.
    const waiting = await tasksWhen(array.id, 'the held-back tasks to say why', (tasks) => tasks.filter((t) => t.reason?.startsWith('ArrayLimit')).length === 4);
    expect(waiting.find((t) => t.state === 'Pending')?.reason).toBe(`ArrayLimit: at most 2 tasks of array ${array.id} run at once; waiting for one to end`);
    const one = await viaApi(['cancel', `${array.id}[5]`]);
    expect(one.stdout).toBe(`job ${array.id}[5] cancelled\n`);
    const res = await viaEtcd(['cancel', array.id, '--grace', '1s']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(`array ${array.id}: 3 tasks cancelled, 2 stopping (cancel requested; the workers stop them, grace 1s)\n`);
    const tasks = await tasksWhen(array.id, 'every task cancelled', (all) => all.every((t) => t.state === 'Cancelled'));
    expect(tasks).toHaveLength(6);
    const twice = await sameRead(['cancel', array.id]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toBe(`error: array ${array.id} already ended (all 6 tasks); nothing to cancel\n`);
    expect((await viaEtcd(['status', array.id])).stdout).toMatch(/^Cancelled:\s+6$/m);
  }, 120_000);

  it('%max: never more than max tasks Scheduled or Running at once, at any revision etcd went through', async () => {
    const held = new Map<string, string>(); // task id -> state, as of the revision applied last
    let most = 0;
    let arrayId: string | undefined;
    const count = (): number => [...held.values()].filter((s) => s === 'Scheduled' || s === 'Running').length;
    const informer = startInformer<Job>(
      cluster.store,
      cluster.store.keys.collection('jobs'),
      {
        reset() {},
        events(events) {
          // A transaction's changes share one revision: count after each revision, never inside one.
          for (let i = 0; i < events.length; ) {
            const revision = events[i].modRevision;
            for (; i < events.length && events[i].modRevision === revision; i++) {
              const e = events[i];
              if (e.value?.array && e.value.array.id === arrayId) held.set(e.value.id, e.value.state);
            }
            most = Math.max(most, count());
          }
        },
      },
      { decode: records.job.decode },
    );
    await informer.ready;
    try {
      // The id is known only once the submit answers: the tasks' creation (all Pending) is all that can come before.
      const plan = planSubmission({ shell: 'sleep 0.3', array: '0-11%3' });
      arrayId = plan.array?.id;
      await new EtcdCluster(cluster.store).submitArray(plan);
      await tasksWhen(plan.array?.id ?? '', 'every task to succeed', (tasks) => tasks.length === 12 && tasks.every((t) => t.state === 'Succeeded'));
      await waitFor('the informer to see every end', async () => ([...held.values()].filter((s) => s === 'Succeeded').length === 12) || undefined);
      expect(most).toBe(3);
      const status = json<ArrayStatusDocument>(await viaEtcd(['status', plan.array?.id ?? '', '-o', 'json']));
      expect(status).toMatchObject({ count: 12, max: 3, tasks: { Succeeded: 12 } });
    } finally {
      await informer.stop();
    }
  }, 120_000);
});
