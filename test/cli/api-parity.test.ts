import { beforeAll, describe, expect, it } from 'vitest';
import { JOB_ID_PATTERN } from '../../pkg/model/id.js';
import { waitFor } from '../worker/helpers.js';
import { cliClusterSuite } from './cli-cluster.js';
import { runCli, startCli, type CliResult } from './run-cli.js';

/**
 * `titan <verb> --output json` answers the same through a master's HTTP API
 * (TITAN_ADDR + TITAN_TOKEN, etcd unreachable) as through etcd: one real
 * cluster (etcd, a master serving the API, a shell worker), every verb run
 * as the real CLI both ways.
 */

const cluster = cliClusterSuite('cli-api-parity');
let admin: string;
let reader: string;

const viaEtcd = (args: readonly string[]): Promise<CliResult> => runCli(args, { endpoints: cluster.etcd.endpoints, prefix: cluster.prefix, timeoutMs: 60_000 });
const viaApi = (args: readonly string[], secret = admin): Promise<CliResult> =>
  runCli(args, { endpoints: cluster.noEtcdAddress, env: { TITAN_ADDR: cluster.api.url, TITAN_TOKEN: secret }, timeoutMs: 60_000 });

async function both(args: readonly string[]): Promise<{ etcd: CliResult; api: CliResult }> {
  const [e, a] = await Promise.all([viaEtcd(args), viaApi(args)]);
  return { etcd: e, api: a };
}

/**
 * A read both ways, printing exactly the same. The API answers from its
 * cache of etcd, which follows a write a moment later: read again until it
 * has caught up (or the time is up, and the difference fails the test).
 */
async function sameRead(args: readonly string[], timeoutMs = 30_000): Promise<CliResult> {
  const deadline = Date.now() + timeoutMs;
  // A table's AGE column is read at each side's own moment: under load the two calls end
  // seconds apart, so ages (46s against 45s, and the padding they set) are left out.
  const table = args[0] === 'list' && (!args.includes('-o') || args[args.indexOf('-o') + 1] === 'wide');
  const shown = (out: string): string => (table ? out.replace(/\b\d+[smhd]\b/g, 'AGE').replace(/ +/g, ' ') : out);
  for (;;) {
    const r = await both(args);
    const same = r.etcd.code === r.api.code && shown(r.etcd.stdout) === shown(r.api.stdout) && r.etcd.stderr === r.api.stderr;
    if (same || Date.now() > deadline) {
      expect({ code: r.api.code, stdout: shown(r.api.stdout), stderr: r.api.stderr }, `titan ${args.join(' ')}`).toEqual({ code: r.etcd.code, stdout: shown(r.etcd.stdout), stderr: r.etcd.stderr });
      return r.etcd;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

const TIMING = new Set(['seconds', 'jobsPerSec']);

/**
 * What legitimately differs between two answers to two equal writes: ids
 * made for new jobs (numbered by first appearance), their timestamps, the
 * timing of a bulk submit, and names the test gave each side.
 */
function normalize(value: unknown, rename: Record<string, string> = {}): unknown {
  const ids = new Map<string, string>();
  const walk = (v: unknown, key?: string): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x));
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    if (typeof v === 'number' && key !== undefined && (key.endsWith('At') || TIMING.has(key))) return `<${key}>`;
    if (typeof v === 'string') {
      if (JOB_ID_PATTERN.test(v)) {
        if (!ids.has(v)) ids.set(v, `<id ${ids.size}>`);
        return ids.get(v);
      }
      return rename[v] ?? v;
    }
    return v;
  };
  return walk(value);
}

const json = (r: CliResult): unknown => JSON.parse(r.stdout);

/** The same write made once each way (on the objects the args name): equal answers once normalized, and equal exit codes. */
async function sameWrite(etcdArgs: readonly string[], apiArgs: readonly string[], rename: Record<string, string> = {}): Promise<{ etcd: CliResult; api: CliResult }> {
  const [e, a] = await Promise.all([viaEtcd(etcdArgs), viaApi(apiArgs)]);
  expect(a.code, `through the API: ${a.stderr}`).toBe(e.code);
  expect(normalize(json(a), rename), `titan ${apiArgs.join(' ')}`).toEqual(normalize(json(e), rename));
  return { etcd: e, api: a };
}

/** The same failure both ways: exit code and message, as text and as the JSON error document. */
async function sameError(args: readonly string[], code: number, errorCode: string): Promise<string> {
  const [text, asJson] = await Promise.all([both(args), both([...args, '--output', 'json'])]);
  expect(text.etcd.code, text.etcd.stderr).toBe(code);
  expect(text.api.code, text.api.stderr).toBe(code);
  expect(text.api.stderr).toBe(text.etcd.stderr);
  expect(text.api.stdout).toBe('');
  expect(asJson.api.code).toBe(code);
  expect(JSON.parse(asJson.api.stderr)).toEqual(JSON.parse(asJson.etcd.stderr));
  expect(JSON.parse(asJson.api.stderr)).toMatchObject({ error: { code: errorCode } });
  return text.etcd.stderr;
}

const idOf = (r: CliResult): string => (json(r) as { id: string }).id;

beforeAll(async () => {
  admin = await cluster.token({ role: 'admin', name: 'parity' });
  reader = await cluster.token({ role: 'reader', name: 'parity-reader' });
  // A queue nothing in it can run in (no CPU at all): its jobs stay Pending for cancel and list.
  const parked = await viaEtcd(['queue', 'create', 'parked', '--limit-cpu', '0']);
  expect(parked.code, parked.stderr).toBe(0);
});

describe('titan through the HTTP API answers as through etcd', () => {
  it('submit: one job, --wait with the job\'s exit code, a gang, -n in one and in several requests', async () => {
    const spec = ['--shell', 'echo out; echo err >&2', '--name', 'parity', '--label', 'team=a', '--env', 'A=1', '--cpu', '250m', '--mem', '32Mi', '--retries', '0', '--timeout', '1m'];
    const one = await sameWrite(['submit', ...spec, '-o', 'json'], ['submit', ...spec, '-o', 'json']);
    expect(one.api.code).toBe(0);

    // --wait exits with the job's code, and prints the final job the same way.
    const failing = ['submit', '--shell', 'echo bye; exit 3', '--name', 'exit-3', '--wait'];
    const waited = await sameWrite([...failing, '-o', 'json'], [...failing, '-o', 'json']);
    expect(waited.api.code).toBe(3);
    expect(json(waited.api)).toMatchObject({ state: 'Failed', exitCode: 3, node: cluster.worker.worker.nodeId });
    const waitedText = await both(failing);
    expect(waitedText.api.code).toBe(3);
    expect(waitedText.api.stdout).toMatch(new RegExp(JOB_ID_PATTERN.source.replace('$', '\n$')));
    expect(waitedText.api.stderr.replace(/\S+ Failed/, '<id> Failed').replace(/after [\d.]+s/, 'after <t>')).toBe(
      waitedText.etcd.stderr.replace(/\S+ Failed/, '<id> Failed').replace(/after [\d.]+s/, 'after <t>'),
    );

    const gang = ['submit', '--shell', 'true', '--replicas', '2', '--min-available', '2', '--name', 'pair', '-o', 'json'];
    const gangs = await sameWrite(gang, gang);
    expect((json(gangs.api) as { jobs: unknown[] }).jobs).toHaveLength(2);

    const bulk = ['submit', '-n', '3', '-t', '0', '--name', 'bulk', '--queue', 'parked', '-o', 'json'];
    const bulks = await sameWrite(bulk, bulk);
    expect(json(bulks.api)).toMatchObject({ submitted: 3 });
    expect((json(bulks.api) as { ids: string[] }).ids).toHaveLength(3);

    // Over the API's limit of jobs per request: several requests, every job in.
    const big = await viaApi(['submit', '-n', '2100', '--shell', 'true', '--name', 'big', '--queue', 'parked']);
    expect(big.code, big.stderr).toBe(0);
    expect(big.stdout).toMatch(/^submitted 2100 jobs in .* \(\d+ jobs\/s, 3 requests\)\n$/);
    const bigJson = await viaApi(['submit', '-n', '1001', '--shell', 'true', '--name', 'big2', '--queue', 'parked', '-o', 'json']);
    expect(bigJson.code, bigJson.stderr).toBe(0);
    const ids = (json(bigJson) as { submitted: number; ids?: string[] });
    expect(ids.submitted).toBe(1001);
    expect(ids.ids).toBeUndefined(); // over MAX_IDS_IN_JSON, as through etcd
  }, 240_000);

  it('status, list, nodes, queue list and logs print exactly the same', async () => {
    const done = await viaApi(['submit', '--shell', 'echo one; echo two >&2; echo three', '--name', 'logged', '--wait', '-o', 'json']);
    expect(done.code, done.stderr).toBe(0);
    const id = idOf(done);
    const gang = await viaEtcd(['submit', '--shell', 'true', '--replicas', '3', '-o', 'json']);
    const replica = (json(gang) as { jobs: { id: string }[] }).jobs[1].id;

    expect(json(await sameRead(['status', id, '-o', 'json']))).toMatchObject({ id, status: 'Succeeded', exitCode: 0 });
    expect(json(await sameRead(['status', replica, '-o', 'json']))).toHaveProperty('replicas');
    const listed = json(await sameRead(['list', '-o', 'json'])) as unknown[];
    expect(listed.length).toBeGreaterThan(3100); // past three pages of the API
    await sameRead(['list', '--state', 'Succeeded,Failed', '--limit', '2', '-o', 'json']);
    await sameRead(['list', '--state', 'Pending', '--limit', '1500', '-o', 'json']);
    await sameRead(['list', '--state', 'Running', '-o', 'json']);
    // Filters and orders, both ways through the one predicate and order (pkg/model/job-query.ts); sorted lists over several pages.
    await sameRead(['list', '--queue', 'parked', '--state', 'Pending', '--sort', 'priority', '--limit', '1100', '-o', 'json']);
    await sameRead(['list', '--sort', 'queue', '--limit', '1200', '-o', 'json']);
    await sameRead(['list', '--label', 'team=a', '--since', '1h', '-o', 'wide']);
    await sameRead(['list', '--queue', 'default', '--state', 'Succeeded', '--state', 'Failed', '--sort', 'queue']);
    // wait: the final states, and the exit code of the first job that did not succeed.
    const failed = await viaApi(['submit', '--shell', 'exit 4', '--wait', '-o', 'json']);
    expect(failed.code).toBe(4);
    const waited = await sameRead(['wait', id, idOf(failed), '-o', 'json']);
    expect(waited.code).toBe(4);
    expect((json(waited) as { state: string }[]).map((j) => j.state)).toEqual(['Succeeded', 'Failed']);
    expect(json(await sameRead(['nodes', '-o', 'json']))).toMatchObject([{ id: cluster.worker.worker.nodeId }]);
    await sameRead(['queue', 'list', '-o', 'json']);

    // Logs: as JSON lines, and as text (stdout to stdout, stderr to stderr), of the latest and of a given attempt, and followed.
    expect((await sameRead(['logs', id])).stdout).toBe('one\nthree\n');
    expect((await sameRead(['logs', id])).stderr).toBe('two\n');
    await sameRead(['logs', id, '-o', 'json']);
    await sameRead(['logs', id, '--attempt', '1']);
    await sameRead(['logs', id, '-f']);
    await sameRead(['logs', id, '-f', '-o', 'json']);
  }, 240_000);

  it('logs -f follows a running job to its end the same way', async () => {
    const script = 'for i in 1 2 3 4 5 6; do echo "line $i"; echo "warn $i" >&2; sleep 0.3; done; exit 4';
    const submitted = await viaApi(['submit', '--shell', script, '--name', 'followed', '-o', 'json']);
    expect(submitted.code, submitted.stderr).toBe(0);
    const id = idOf(submitted);
    const followers = [
      startCli(['logs', '-f', id], { endpoints: cluster.etcd.endpoints, prefix: cluster.prefix, timeoutMs: 60_000 }),
      startCli(['logs', '-f', id], { endpoints: cluster.noEtcdAddress, env: { TITAN_ADDR: cluster.api.url, TITAN_TOKEN: admin }, timeoutMs: 60_000 }),
    ];
    const [e, a] = await Promise.all(followers.map((f) => f.result));
    const expected = [1, 2, 3, 4, 5, 6].map((i) => `line ${i}\n`).join('');
    expect(e).toMatchObject({ code: 0, stdout: expected });
    expect({ code: a.code, stdout: a.stdout, stderr: a.stderr }).toEqual({ code: e.code, stdout: e.stdout, stderr: e.stderr });
  }, 120_000);

  it('list --watch prints the list again on a change the same way', async () => {
    const args = ['list', '--watch', '--label', 'watched=yes', '-o', 'json'];
    const watchers = [
      startCli(args, { endpoints: cluster.etcd.endpoints, prefix: cluster.prefix, timeoutMs: 90_000 }),
      startCli(args, { endpoints: cluster.noEtcdAddress, env: { TITAN_ADDR: cluster.api.url, TITAN_TOKEN: admin }, timeoutMs: 90_000 }),
    ];
    const last = (text: string): string => text.trimEnd().split('\n').at(-1) ?? '';
    try {
      for (const w of watchers) await w.waitFor(({ stdout }) => stdout === '[]\n');
      const submitted = await viaApi(['submit', '--shell', 'true', '--label', 'watched=yes', '--queue', 'parked', '-o', 'json']);
      const id = idOf(submitted);
      for (const w of watchers) await w.waitFor(({ stdout }) => stdout.includes(id));
      expect(await viaApi(['cancel', id])).toMatchObject({ code: 0 });
      for (const w of watchers) await w.waitFor(({ stdout }) => (JSON.parse(last(stdout)) as { state: string }[])[0]?.state === 'Cancelled');
      expect(JSON.parse(last(watchers[1].stdout()))).toEqual(JSON.parse(last(watchers[0].stdout())));
    } finally {
      for (const w of watchers) w.child.kill('SIGTERM');
    }
    await Promise.all(watchers.map((w) => w.result));
  }, 120_000);

  it('cancel, retry and queue create, update and delete: the same answers', async () => {
    const pending = await Promise.all([1, 2].map(() => viaEtcd(['submit', '--shell', 'true', '--queue', 'parked', '-o', 'json'])));
    const [forEtcd, forApi] = pending.map(idOf);
    await waitFor('the API to see the parked jobs', async () => (cluster.api.cache.jobs.has(forEtcd) && cluster.api.cache.jobs.has(forApi)) || undefined);
    const cancelled = await sameWrite(['cancel', forEtcd, '--grace', '2s', '-o', 'json'], ['cancel', forApi, '--grace', '2s', '-o', 'json']);
    expect(json(cancelled.api)).toMatchObject({ state: 'Cancelled' });
    const [cancelText] = await Promise.all([viaApi(['cancel', forApi])]);
    expect(cancelText.code).toBe(1); // cancelled already: a Conflict

    const failed = await Promise.all([1, 2].map(() => viaEtcd(['submit', '--shell', 'exit 1', '--wait', '-o', 'json'])));
    const [failedEtcd, failedApi] = failed.map(idOf);
    await waitFor('the API to see the failed jobs', async () => (cluster.api.cache.jobs.get(failedApi)?.value.state === 'Failed' && cluster.api.cache.jobs.get(failedEtcd)?.value.state === 'Failed') || undefined);
    const retried = await sameWrite(['retry', failedEtcd, '-o', 'json'], ['retry', failedApi, '-o', 'json']);
    expect(json(retried.api)).toMatchObject({ state: 'Pending' });

    const rename = { 'q-etcd': '<queue>', 'q-api': '<queue>' };
    const flags = ['--quota-cpu', '1', '--quota-mem', '1Gi', '--limit-gpu', '2', '--weight', '2'];
    await sameWrite(['queue', 'create', 'q-etcd', ...flags, '-o', 'json'], ['queue', 'create', 'q-api', ...flags, '-o', 'json'], rename);
    await sameWrite(['queue', 'update', 'q-etcd', '--limit-gpu', 'none', '--weight', '3', '-o', 'json'], ['queue', 'update', 'q-api', '--limit-gpu', 'none', '--weight', '3', '-o', 'json'], rename);
    await sameRead(['queue', 'list', '-o', 'json']);
    await sameWrite(['queue', 'delete', 'q-etcd', '-o', 'json'], ['queue', 'delete', 'q-api', '-o', 'json'], rename);
    const text = await Promise.all([viaEtcd(['queue', 'create', 'q-text']), viaApi(['queue', 'create', 'q-text2'])]);
    expect(text[1].stdout.replace('q-text2', 'q-text')).toBe(text[0].stdout);
  }, 180_000);

  it('fails the same way: bad input exits 2, an unknown job or queue, a conflict and a refused role exit 1', async () => {
    // Checked before anything is sent, and by the API with the same functions.
    expect(await sameError(['submit', '--shell', 'true', '--cpu', 'lots'], 2, 'InvalidInput')).toMatch(/^error: cpu: /);
    await sameError(['list', '--state', 'Sleeping'], 2, 'InvalidInput');
    await sameError(['list', '--sort', 'name'], 2, 'InvalidInput');
    await sameError(['wait', '0000000000000'], 1, 'NotFound');
    await sameError(['queue', 'create', 'Bad Name!'], 2, 'InvalidInput');
    await sameError(['queue', 'update', 'parked'], 2, 'InvalidInput');
    await sameError(['submit', '--shell', 'true', '--replicas', '2', '--min-available', '3'], 2, 'InvalidInput');
    expect(await sameError(['submit', '--shell', 'true', '--queue', 'nowhere'], 2, 'InvalidInput')).toMatch(/^error: queue: no queue "nowhere"/);
    await sameError(['submit', '-n', '5', '--shell', 'true', '--queue', 'nowhere'], 2, 'InvalidInput');

    expect(await sameError(['status', '0000000000000'], 1, 'NotFound')).toBe('error: no job 0000000000000 (see titan list)\n');
    await sameError(['status', 'no/such job'], 1, 'NotFound');
    await sameError(['logs', '0000000000000'], 1, 'NotFound');
    await sameError(['cancel', '0000000000000'], 1, 'NotFound');
    await sameError(['retry', '0000000000000'], 1, 'NotFound');
    await sameError(['queue', 'delete', 'nowhere'], 1, 'NotFound');
    await sameError(['queue', 'create', 'parked'], 1, 'Conflict');

    // A reader token may look but not submit: 403 → PermissionDenied, exit 1, nothing written.
    const before = cluster.api.cache.jobs.size;
    const refused = await viaApi(['submit', '--shell', 'true', '-o', 'json'], reader);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stderr)).toMatchObject({ error: { code: 'PermissionDenied', message: expect.stringContaining('reader token') } });
    expect(cluster.api.cache.jobs.size).toBe(before);
    expect((await viaApi(['list', '--limit', '1', '-o', 'json'], reader)).code).toBe(0);
    const anonymous = await runCli(['list'], { endpoints: cluster.noEtcdAddress, env: { TITAN_ADDR: cluster.api.url } });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/TITAN_TOKEN/);

    // Every run through the API so far left etcd alone.
    expect(cluster.etcdAttempts).toBe(0);
    // Verbs on etcd itself never use the API, and say so when etcd is out of reach.
    const tokens = await viaApi(['token', 'list']);
    expect(tokens.code).toBe(1);
    expect(tokens.stderr).toMatch(/^error: titan token list works on etcd directly, not through the API/);
    expect(cluster.etcdAttempts).toBeGreaterThan(0); // the listener does see a client that tries
  }, 180_000);
});
