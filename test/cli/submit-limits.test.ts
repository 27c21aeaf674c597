import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_ID_PATTERN, MAX_JOB_SPEC_BYTES, type Job } from '../../pkg/model/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { makeJob, snapshot } from './fixtures.js';
import { runCli } from './run-cli.js';

const suite = etcdSuite('cli-submit-limits');
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-limits-'));
  const big = 'x'.repeat(MAX_JOB_SPEC_BYTES);
  fs.writeFileSync(path.join(tmp, 'big-env.yaml'), `image: busybox\nenv:\n  BLOB: "${big}"\n`);
  // Twenty-two 3 KiB labels: each small, together over the limit.
  const labels = Array.from({ length: 22 }, (_, i) => `  l${i}: "${'y'.repeat(3 * 1024)}"`).join('\n');
  fs.writeFileSync(path.join(tmp, 'many-labels.yaml'), `image: busybox\nlabels:\n${labels}\n`);
  fs.writeFileSync(path.join(tmp, 'reserved.json'), JSON.stringify({ image: 'busybox', env: { A: '1', NVIDIA_DRIVER_CAPABILITIES: 'all' } }));
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('titan submit: reserved env keys and the spec size cap', () => {
  const limit = new RegExp(`over the limit of ${MAX_JOB_SPEC_BYTES} bytes \\(64 KiB\\)`);
  const cases: [string, string[], RegExp][] = [
    ['NVIDIA_VISIBLE_DEVICES', ['submit', '--image', 'busybox', '--env', 'NVIDIA_VISIBLE_DEVICES=all'], /env\.NVIDIA_VISIBLE_DEVICES: is reserved/],
    ['CUDA_VISIBLE_DEVICES', ['submit', '--shell', 'true', '--env', 'CUDA_VISIBLE_DEVICES=0'], /env\.CUDA_VISIBLE_DEVICES: is reserved/],
    ['TITAN_*', ['submit', '--image', 'busybox', '--env', 'OK=1', '--env', 'TITAN_JOB_ID=someone-else'], /env\.TITAN_JOB_ID: is reserved/],
    ['NVIDIA_* in a spec file', ['submit', '-f', 'reserved.json'], /env\.NVIDIA_DRIVER_CAPABILITIES: is reserved/],
    ['a command over the cap', ['submit', '--image', 'busybox', '--cmd', `echo ${'z'.repeat(MAX_JOB_SPEC_BYTES)}`], limit],
    ['an env over the cap', ['submit', '-f', 'big-env.yaml'], limit],
    ['labels over the cap together', ['submit', '-f', 'many-labels.yaml'], limit],
    ['a bulk submit over the cap', ['submit', '-n', '50', '-t', '1', '-f', 'big-env.yaml'], limit],
  ];

  it.each(cases)('%s: exit 2, one line naming the limit or key, nothing written', async (_name, args, message) => {
    await suite.store.createJobs([makeJob()]);
    const before = await snapshot(suite.store);
    const res = await runCli(args, { endpoints: suite.etcd.endpoints, prefix: suite.prefix, cwd: tmp });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stdout).toBe('');
    const lines = res.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(await snapshot(suite.store)).toEqual(before);
  });

  it('a job just under the cap is accepted whole', async () => {
    const value = 'v'.repeat(MAX_JOB_SPEC_BYTES - 200);
    const res = await runCli(['submit', '--image', 'busybox', '--cmd', 'true', '--env', `BIG=${value}`, '--env', 'NVIDIA=not-reserved'], {
      endpoints: suite.etcd.endpoints,
      prefix: suite.prefix,
    });
    expect(res.code, res.stderr).toBe(0);
    const id = res.stdout.trim();
    expect(id).toMatch(JOB_ID_PATTERN);
    const job: Job = (await suite.store.requireJob(id)).value;
    expect(job.env).toEqual({ BIG: value, NVIDIA: 'not-reserved' });
  });
});
