import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { JOB_ID_PATTERN, type Job } from '../../pkg/model/index.js';
import { DEFAULT_CALL_TIMEOUT_MS } from '../../pkg/store/client.js';
import type { Store } from '../../pkg/store/store.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { freePort } from '../harness/ports.js';
import { waitFor } from '../harness/wait.js';
import { countKeys, makeJob, openStore, putJob, randomPrefix, snapshot } from './fixtures.js';
import { runCli, startCli } from './run-cli.js';

let etcd: EtcdServer;
let store: Store;
let prefix: string;
let tmp: string;
const cli = (...args: string[]) => runCli(args, { endpoints: etcd.endpoints, prefix });

beforeAll(async () => {
  etcd = await startEtcd({ name: 'cli-submit' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-cli-'));
  fs.writeFileSync(path.join(tmp, 'unknown.yaml'), 'image: busybox\ncmd: echo hi\nbogus: 1\n');
  fs.writeFileSync(path.join(tmp, 'unknown.json'), JSON.stringify({ image: 'busybox', bogusField: true }));
  fs.writeFileSync(path.join(tmp, 'invalid.yaml'), 'image: [busybox\ncmd: : :\n');
  fs.writeFileSync(path.join(tmp, 'good.yaml'), 'name: from-file\nimage: busybox\ncmd: echo hi\ncpu: 250m\nmemory: 128Mi\nenv:\n  A: "1"\nlabels:\n  team: x\n');
});

afterAll(async () => {
  await etcd?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(async () => {
  store?.close();
  prefix = randomPrefix();
  store = openStore(etcd.endpoints, prefix);
});

afterAll(() => store?.close());

describe('bad input exits 2, names the field and writes nothing', () => {
  const cases: [string, string[], RegExp][] = [
    ['negative cpu', ['submit', '--image', 'busybox', '--cpu', '-1'], /cpu/],
    ['cpu with an unknown unit', ['submit', '--image', 'busybox', '--cpu', '2q'], /cpu/],
    ['negative memory', ['submit', '--image', 'busybox', '--mem', '-512Mi'], /memory/],
    ['memory with an unknown unit', ['submit', '--image', 'busybox', '--mem', '5Qi'], /memory/],
    ['--gpu -1', ['submit', '--image', 'busybox', '--gpu', '-1'], /gpu/],
    ['--gpu 1.5', ['submit', '--image', 'busybox', '--gpu', '1.5'], /gpu: "1.5": a job may share one GPU \(below 1\) or take whole GPUs/],
    ['--gpu 0.0001', ['submit', '--image', 'busybox', '--gpu', '0.0001'], /gpu: .*finer than 1\/1000/],
    ['--gpu-model without --gpu', ['submit', '--image', 'busybox', '--gpu-model', 'V100M16'], /gpuModel: --gpu-model needs --gpu/],
    ['--gpu-model without --gpu, bulk', ['submit', '-n', '3', '-t', '1', '--image', 'busybox', '--gpu-model', 'A100'], /--gpu-model needs --gpu/],
    ['bad --gpu-model', ['submit', '--image', 'busybox', '--gpu', '1', '--gpu-model', 'V100 M16'], /gpuModel/],
    ['bad --node-selector', ['submit', '--image', 'busybox', '--node-selector', 'zone'], /nodeSelector: "zone" is not KEY=VALUE/],
    ['missing image', ['submit', '--cmd', 'echo hi'], /image/],
    ['empty --cmd', ['submit', '--image', 'busybox', '--cmd', ''], /cmd/],
    ['empty --shell', ['submit', '--shell', '  '], /shell/],
    ['--image and --shell together', ['submit', '--image', 'busybox', '--shell', 'echo hi'], /shell/],
    ['unknown field in a YAML spec', ['submit', '-f', 'unknown.yaml'], /bogus/],
    ['unknown field in a JSON spec', ['submit', '-f', 'unknown.json'], /bogusField/],
    ['invalid YAML', ['submit', '-f', 'invalid.yaml'], /file: .*invalid\.yaml is not valid YAML/],
    ['missing spec file', ['submit', '-f', 'nope.yaml'], /file: cannot read/],
    ['unknown option', ['submit', '--image', 'busybox', '--frobnicate'], /unknown option '--frobnicate'/],
    ['bad priority', ['submit', '--image', 'busybox', '--priority', 'high'], /priority/],
    ['-n 0', ['submit', '-n', '0', '-t', '1'], /count/],
    ['bad -t', ['submit', '-n', '2', '-t', 'soon'], /time/],
    ['-t with --cmd', ['submit', '--image', 'busybox', '--cmd', 'echo', '-t', '1'], /time/],
    ['--wait with -n', ['submit', '-n', '2', '-t', '1', '--wait'], /wait/],
    ['unknown state filter', ['list', '--state', 'Pending,Sleeping'], /state: "Sleeping"/],
    ['bad --limit', ['list', '--limit', '0'], /limit/],
    ['bad --output', ['list', '--output', 'yaml'], /output/],
    ['bad --grace', ['cancel', 'abc', '--grace', 'later'], /grace/],
    ['bad --attempt', ['logs', 'abc', '--attempt', '0'], /attempt/],
    ['missing argument', ['status'], /missing required argument 'id'/],
    ['unknown command', ['frobnicate'], /unknown command/],
    ['bad endpoints', ['--endpoints', 'not an endpoint', 'list'], /endpoints/],
  ];

  it.each(cases)('%s', async (_name, args, field) => {
    await store.createJobs([makeJob()]); // something to keep unchanged
    const before = await snapshot(store);
    const res = await runCli(args, { endpoints: etcd.endpoints, prefix, cwd: tmp });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stdout).toBe('');
    const lines = res.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: /);
    expect(lines[0]).toMatch(field);
    expect(await snapshot(store)).toEqual(before);
  });

  it('reports bad input as JSON on stderr with --output json', async () => {
    const before = await snapshot(store);
    const res = await cli('submit', '--image', 'busybox', '--cpu', '-1', '--output', 'json');
    expect(res.code).toBe(2);
    expect(JSON.parse(res.stderr)).toEqual({ error: { code: 'InvalidInput', message: expect.stringMatching(/^cpu: /) } });
    const usage = await cli('-o', 'json', 'submit', '--nope');
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr).error.code).toBe('InvalidInput');
    expect(await snapshot(store)).toEqual(before);
  });
});

describe('submit, status, list, cancel', () => {
  it('submits a pending job that status and list show', async () => {
    const res = await cli('submit', '--shell', 'echo hello', '--name', 'hello', '--cpu', '250m', '--mem', '128Mi', '--label', 'team=a');
    expect(res.code, res.stderr).toBe(0);
    const id = res.stdout.trim();
    expect(id).toMatch(JOB_ID_PATTERN);

    const status = await cli('status', id, '--output', 'json');
    expect(status.code, status.stderr).toBe(0);
    const view = JSON.parse(status.stdout) as Record<string, unknown>;
    expect(view).toMatchObject({
      id,
      name: 'hello',
      kind: 'shell',
      command: ['/bin/sh', '-c', 'echo hello'],
      state: 'Pending',
      status: 'Pending',
      node: null,
      exitCode: null,
      reason: null,
      attempt: 0,
      resources: { cpu: 250, memory: 128 * 2 ** 20, gpuMilli: 0 },
      labels: { team: 'a' },
    });

    const human = await cli('status', id);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^ID:\\s+${id}$`, 'm'));
    expect(human.stdout).toMatch(/^State:\s+Pending$/m);
    expect(human.stdout).toMatch(/^Command:\s+\/bin\/sh -c 'echo hello'$/m);

    const list = await cli('list');
    expect(list.code).toBe(0);
    const [header, row] = list.stdout.trimEnd().split('\n');
    expect(header.split(/\s+/)).toEqual(['ID', 'NAME', 'STATUS', 'QUEUE', 'NODE', 'AGE']);
    expect(row.split(/\s+/)).toEqual([id, 'hello', 'Pending', 'default', '-', expect.stringMatching(/^\d+s$/)]);

    const json = JSON.parse((await cli('list', '-o', 'json')).stdout) as Job[];
    expect(json.map((j) => j.id)).toEqual([id]);
    expect((await cli('list', '--state', 'running,Succeeded', '-o', 'json')).stdout.trim()).toBe('[]');
  });

  it('prints the whole job as JSON and takes a spec file with flag overrides', async () => {
    const res = await runCli(['submit', '-f', 'good.yaml', '--cpu', '1', '--env', 'B=2', '-o', 'json'], {
      endpoints: etcd.endpoints,
      prefix,
      cwd: tmp,
    });
    expect(res.code, res.stderr).toBe(0);
    const job = JSON.parse(res.stdout) as Job;
    expect(job).toMatchObject({
      name: 'from-file',
      kind: 'docker',
      image: 'busybox',
      command: ['/bin/sh', '-c', 'echo hi'],
      resources: { cpu: 1000, memory: 128 * 2 ** 20, gpuMilli: 0 },
      env: { A: '1', B: '2' },
      labels: { team: 'x' },
      state: 'Pending',
      attempt: 0,
    });
    expect((await store.requireJob(job.id)).value).toEqual(job);
  });

  it('stores a GPU share, GPU models and a node selector; status shows them', async () => {
    const res = await cli(
      'submit', '--image', 'cuda', '--gpu', '0.25', '--gpu-model', 'V100M16|V100M32',
      '--node-selector', 'zone=a', '--node-selector', 'rack=r7', '-o', 'json',
    );
    expect(res.code, res.stderr).toBe(0);
    const job = JSON.parse(res.stdout) as Job;
    expect(job).toMatchObject({
      resources: { gpuMilli: 250 },
      gpuModels: ['V100M16', 'V100M32'],
      nodeSelector: { zone: 'a', rack: 'r7' },
    });
    expect((await store.requireJob(job.id)).value).toEqual(job);

    // As the master would place it: a quarter of one device.
    await putJob(store, { ...job, state: 'Scheduled', node: 'gpu-1', attempt: 1, gpuDevices: ['GPU-aaaa'] });
    const human = await cli('status', job.id);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^Resources:\s+cpu 0\.1, memory 64Mi, gpu 0\.25$/m);
    expect(human.stdout).toMatch(/^GPU devices:\s+GPU-aaaa \(a 0\.25 share\)$/m);
    expect(human.stdout).toMatch(/^GPU models:\s+V100M16\|V100M32$/m);
    expect(human.stdout).toMatch(/^Node selector:\s+rack=r7,zone=a$/m);
  });

  it('-n passes the GPU flags to every job', async () => {
    const res = await cli('submit', '-n', '3', '-t', '1', '--image', 'cuda', '--gpu', '2', '--gpu-model', 'A100', '--node-selector', 'zone=b');
    expect(res.code, res.stderr).toBe(0);
    const { items } = await store.listJobs();
    expect(items).toHaveLength(3);
    for (const { value } of items) {
      expect(value).toMatchObject({ resources: { gpuMilli: 2000 }, gpuModels: ['A100'], nodeSelector: { zone: 'b' } });
    }
  });

  it('passes argv after -- unchanged', async () => {
    const res = await cli('submit', '--image', 'busybox', '-o', 'json', '--', 'echo', '--not-an-option', 'a b');
    expect(res.code, res.stderr).toBe(0);
    expect((JSON.parse(res.stdout) as Job).command).toEqual(['echo', '--not-an-option', 'a b']);
  });

  it('lists newest first, filters by status and limits', async () => {
    const now = Date.now();
    const jobs = [
      makeJob({ name: 'old', createdAt: now - 3 * 3_600_000, state: 'Succeeded' }),
      makeJob({ name: 'mid', createdAt: now - 5 * 60_000, state: 'Running', node: 'n1', attempt: 1 }),
      makeJob({ name: 'new', createdAt: now - 2000 }),
    ];
    for (const j of jobs) await putJob(store, j);
    const list = await cli('list');
    const rows = list.stdout.trimEnd().split('\n').slice(1).map((r) => r.split(/\s+/));
    expect(rows.map((r) => r[1])).toEqual(['new', 'mid', 'old']);
    expect(rows[1]).toEqual([jobs[1].id, 'mid', 'Running', 'default', 'n1', '5m']);
    expect(rows[2][5]).toBe('3h');
    const running = JSON.parse((await cli('list', '--state', 'Running,Pending', '-o', 'json')).stdout) as Job[];
    expect(running.map((j) => j.name)).toEqual(['new', 'mid']);
    const limited = JSON.parse((await cli('list', '--limit', '2', '-o', 'json')).stdout) as Job[];
    expect(limited.map((j) => j.name)).toEqual(['new', 'mid']);
  });

  it('-n 50 -t 1 creates 50 jobs in few transactions', async () => {
    const before = await snapshot(store);
    const res = await cli('submit', '-n', '50', '-t', '1', '-o', 'json');
    expect(res.code, res.stderr).toBe(0);
    const summary = JSON.parse(res.stdout) as { submitted: number; seconds: number; jobsPerSec: number; ids: string[] };
    expect(summary.submitted).toBe(50);
    expect(summary.ids).toHaveLength(50);
    expect(summary.seconds).toBeGreaterThanOrEqual(0);
    expect(summary.jobsPerSec).toBeGreaterThan(0);
    expect(await countKeys(store, store.keys.collection('jobs'))).toBe(50);
    const after = await snapshot(store);
    // Each etcd transaction bumps the revision once: 50 jobs fit one 64-job batch.
    expect(BigInt(after.revision) - BigInt(before.revision)).toBeLessThanOrEqual(2n);
    const { items } = await store.listJobs();
    const names = items.map((i) => i.value.name).sort((a, b) => Number(a.slice(7)) - Number(b.slice(7)));
    expect(names).toEqual(Array.from({ length: 50 }, (_, i) => `stress-${i + 1}`));
    for (const { value } of items) {
      expect(value).toMatchObject({ kind: 'shell', command: ['/bin/sh', '-c', 'sleep 1'], state: 'Pending' });
    }

    const text = await cli('submit', '-n', '3', '-t', '2s', '--image', 'busybox');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^submitted 3 jobs in \S+ \(\d+ jobs\/s, 1 transactions\)\n$/);
    const docker = (await store.listJobs()).items.filter((i) => i.value.kind === 'docker');
    expect(docker).toHaveLength(3);
    expect(docker[0].value).toMatchObject({ image: 'busybox', command: ['/bin/sh', '-c', 'sleep 2'] });
  });

  it('-n 2000 submits quickly, in bounded transactions, and leaves ids out of big JSON summaries', async () => {
    const before = await snapshot(store);
    const res = await cli('submit', '-n', '2000', '-t', '5', '-o', 'json');
    expect(res.code, res.stderr).toBe(0);
    const summary = JSON.parse(res.stdout) as Record<string, unknown>;
    expect(summary.submitted).toBe(2000);
    expect(summary).not.toHaveProperty('ids');
    expect(await countKeys(store, store.keys.collection('jobs'))).toBe(2000);
    const after = await snapshot(store);
    expect(BigInt(after.revision) - BigInt(before.revision)).toBe(BigInt(Math.ceil(2000 / 64)));
    expect(res.ms).toBeLessThan(10_000);
  });

  it('cancels a pending job; cancelling it again fails with exit 1', async () => {
    const id = (await cli('submit', '--shell', 'sleep 100')).stdout.trim();
    const cancel = await cli('cancel', id);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toBe(`job ${id} cancelled\n`);
    expect((await store.requireJob(id)).value.state).toBe('Cancelled');
    const status = JSON.parse((await cli('status', id, '-o', 'json')).stdout) as Record<string, unknown>;
    expect(status).toMatchObject({ status: 'Cancelled', reason: expect.any(String) });

    const again = await cli('cancel', id);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/^error: job \S+ already ended \(Cancelled\).*\n$/);
    const json = await cli('cancel', id, '-o', 'json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr).error.code).toBe('Conflict');
  });

  it('asks the worker to stop a running job', async () => {
    const job = makeJob({ state: 'Running', node: 'n1', attempt: 1 });
    await putJob(store, job);
    await store.client.put(store.keys.assignment('n1', job.id)).value(
      (await import('../../pkg/store/codec.js')).encode({ jobId: job.id, nodeId: 'n1', attempt: 1, resources: job.resources, gpuDevices: [], assignedAt: Date.now() }),
    );
    const res = await cli('cancel', job.id, '--grace', '3s');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/cancel requested; the worker stops it \(grace 3s\)/);
    expect((await store.requireJob(job.id)).value).toMatchObject({ state: 'Running', cancelRequested: true });
  });

  it('status of an unknown id exits 1 with NotFound', async () => {
    const res = await cli('status', '0000000000000');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^error: no job 0000000000000/);
    const json = await cli('status', '0000000000000', '-o', 'json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr).error.code).toBe('NotFound');
  });
});

describe('submit --wait', () => {
  async function waitForId(run: ReturnType<typeof startCli>): Promise<string> {
    await run.waitFor(({ stdout }) => /^\S{13}\n/.test(stdout));
    return run.stdout().trim();
  }

  it('exits with the job exit code once it ends', async () => {
    const run = startCli(['submit', '--shell', 'exit 3', '--wait'], { endpoints: etcd.endpoints, prefix });
    const id = await waitForId(run);
    const job = (await store.requireJob(id)).value;
    await putJob(store, { ...job, state: 'Running', node: 'n1', attempt: 1, startedAt: Date.now() });
    await putJob(store, { ...job, state: 'Failed', node: 'n1', attempt: 1, exitCode: 3, finishedAt: Date.now() });
    const res = await run.result;
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).toMatch(new RegExp(`^job ${id} Failed \\(exit 3\\) on n1`));
  });

  it('exits 0 on success and 1 when cancelled', async () => {
    const ok = startCli(['submit', '--shell', 'true', '--wait', '-o', 'json'], { endpoints: etcd.endpoints, prefix });
    const pending = await waitFor('the submitted job in etcd', async () => (await store.listJobs()).items[0], 10_000);
    await putJob(store, { ...pending.value, state: 'Succeeded', exitCode: 0, attempt: 1, node: 'n1' });
    const okRes = await ok.result;
    expect(okRes.code, okRes.stderr).toBe(0);
    expect(JSON.parse(okRes.stdout)).toMatchObject({ id: pending.value.id, state: 'Succeeded', exitCode: 0 });

    const cancelled = startCli(['submit', '--shell', 'sleep 100', '--wait'], { endpoints: etcd.endpoints, prefix });
    const id = await waitForId(cancelled);
    expect((await cli('cancel', id)).code).toBe(0);
    const res = await cancelled.result;
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/Cancelled/);
  });
});

describe('unreachable etcd', () => {
  /**
   * A refused or silent etcd is reported within one call deadline of the
   * CLI's own start. That start is measured here, now (a run against the
   * live etcd), so a loaded machine slows the bound as much as the CLI.
   */
  let withinMs: number;
  beforeAll(async () => {
    const reference = await cli('list');
    withinMs = DEFAULT_CALL_TIMEOUT_MS + 2 * reference.ms + 1000;
  });

  it.each([
    ['status', ['status', '0000000000000']],
    ['list', ['list']],
    ['submit', ['submit', '--shell', 'echo hi']],
    ['submit -n', ['submit', '-n', '100', '-t', '1']],
    ['nodes', ['nodes']],
    ['logs', ['logs', '0000000000000']],
    ['cancel', ['cancel', '0000000000000']],
  ])('%s exits 1 within the call deadline', async (_name, args) => {
    const port = await freePort(); // nothing listens there
    const res = await runCli(args, { endpoints: `127.0.0.1:${port}`, prefix, timeoutMs: withinMs + 5000 });
    expect(res.signal).toBeNull();
    expect(res.code, res.stderr).toBe(1);
    expect(res.ms).toBeLessThan(withinMs);
    expect(res.stderr).toMatch(new RegExp(`^error: cannot reach etcd at http://127\\.0\\.0\\.1:${port}`));
    expect(res.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('an etcd that accepts connections but never answers is reported within the call deadline', async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => void sockets.add(s.on('error', () => undefined)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const res = await runCli(['list'], { endpoints: `127.0.0.1:${port}`, prefix, timeoutMs: withinMs + 5000 });
      expect(res.code, res.stderr).toBe(1);
      expect(res.ms).toBeLessThan(withinMs);
      expect(res.stderr).toMatch(/^error: cannot reach etcd/);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});
