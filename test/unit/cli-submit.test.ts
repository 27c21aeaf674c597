import { describe, expect, it } from 'vitest';
import { submitJobs } from '../../internal/cli/bulk-submit.js';
import { jobStatusView } from '../../internal/cli/jobs.js';
import { buildSubmitInput, describeOutcome, jobExitCode, planSubmission } from '../../internal/cli/submit.js';
import { JOB_ID_PATTERN, TitanError, type Job } from '../../pkg/model/index.js';

const files: Record<string, string> = {
  'job.yaml': 'name: base\nimage: busybox\ncmd: echo hi\nenv:\n  A: "1"\nlabels:\n  team: a\n',
  'shell.json': JSON.stringify({ shell: 'echo hi', cpu: '250m' }),
  'gpu.yaml': 'image: cuda\ngpu: 0.5\ngpuModel: [A100, H100]\nnodeSelector:\n  zone: a\n',
};
const readText = (path: string): string => {
  const text = files[path];
  if (text === undefined) throw new Error(`ENOENT: ${path}`);
  return text;
};

describe('planSubmission', () => {
  it('builds one pending job from flags', () => {
    const plan = planSubmission({ shell: 'echo hi', name: 'x', env: ['A=1'], label: ['k=v'], priority: '5' }, { now: 1000 });
    expect(plan.bulk).toBe(false);
    expect(plan.jobs).toHaveLength(1);
    expect(plan.jobs[0]).toMatchObject({
      name: 'x',
      kind: 'shell',
      command: ['/bin/sh', '-c', 'echo hi'],
      env: { A: '1' },
      labels: { k: 'v' },
      priority: 5,
      state: 'Pending',
      attempt: 0,
      createdAt: 1000,
    });
    expect(plan.jobs[0].id).toMatch(JOB_ID_PATTERN);
    expect(plan.jobs[0]).not.toHaveProperty('image');
  });

  it('merges a spec file with flags: flags win, env and labels add up', () => {
    const input = buildSubmitInput({ file: 'job.yaml', name: 'override', env: ['B=2'], label: ['x=y'] }, readText);
    expect(input).toMatchObject({ name: 'override', image: 'busybox', cmd: 'echo hi', env: ['A=1', 'B=2'], labels: ['team=a', 'x=y'] });
    const plan = planSubmission({ file: 'shell.json', mem: '1Gi' }, { readText });
    expect(plan.jobs[0]).toMatchObject({ kind: 'shell', resources: { cpu: 250, memory: 2 ** 30, gpuMilli: 0 } });
  });

  it('reports an unreadable file as bad input', () => {
    expect(() => planSubmission({ file: 'missing.yaml' }, { readText })).toThrowError(/^file: cannot read missing.yaml/);
  });

  it('-n -t: n shell jobs sleeping t, named stress-1..n, with increasing ids', () => {
    const plan = planSubmission({ count: '5', time: '5' }, { now: 42 });
    expect(plan.bulk).toBe(true);
    expect(plan.jobs.map((j) => j.name)).toEqual(['stress-1', 'stress-2', 'stress-3', 'stress-4', 'stress-5']);
    for (const job of plan.jobs) expect(job).toMatchObject({ kind: 'shell', command: ['/bin/sh', '-c', 'sleep 5'], createdAt: 42 });
    const ids = plan.jobs.map((j) => j.id);
    expect(new Set(ids).size).toBe(5);
    expect([...ids].sort()).toEqual(ids);
  });

  it('-t with --image makes docker jobs running sleep via /bin/sh -c; fractions and units work', () => {
    const plan = planSubmission({ count: '2', time: '1500ms', image: 'busybox', name: 'load' });
    expect(plan.jobs.map((j) => j.name)).toEqual(['load-1', 'load-2']);
    expect(plan.jobs[0]).toMatchObject({ kind: 'docker', image: 'busybox', command: ['/bin/sh', '-c', 'sleep 1.5'] });
    expect(planSubmission({ time: '2m', shell: undefined }).jobs[0].command).toEqual(['/bin/sh', '-c', 'sleep 120']);
  });

  it('-n copies any other spec; jobs do not share env or label objects', () => {
    const plan = planSubmission({ count: '2', image: 'busybox', cmd: 'echo hi', env: ['A=1'] });
    expect(plan.jobs[0].command).toEqual(['/bin/sh', '-c', 'echo hi']);
    expect(plan.jobs[0].env).not.toBe(plan.jobs[1].env);
  });

  it.each([
    [{ count: '0', time: '1' }, /^count: must be more than zero/],
    [{ count: 'many', time: '1' }, /^count: /],
    [{ count: '2000000', time: '1' }, /^count: at most/],
    [{ count: '2', time: 'soon' }, /^time: /],
    [{ count: '2', time: '1', shell: 'echo' }, /^time: -t sets the command/],
    [{ count: '2', time: '1', wait: true }, /^wait: /],
    [{ count: '2' }, /^image: missing/],
  ])('rejects %j', (flags, message) => {
    expect(() => planSubmission(flags)).toThrowError(message);
  });
});

describe('planSubmission: GPU placement flags', () => {
  it('--gpu takes a share of one GPU (stored as milli-GPU) or whole GPUs', () => {
    expect(planSubmission({ image: 'cuda', gpu: '0.25' }).jobs[0].resources.gpuMilli).toBe(250);
    expect(planSubmission({ image: 'cuda', gpu: '2' }).jobs[0].resources.gpuMilli).toBe(2000);
    expect(planSubmission({ image: 'cuda' }).jobs[0].resources.gpuMilli).toBe(0);
  });

  it('--gpu-model is a |-separated list and --node-selector pairs make a map', () => {
    const [job] = planSubmission({
      image: 'cuda',
      gpu: '1',
      gpuModel: 'V100M16|V100M32',
      nodeSelector: ['zone=a', 'rack=r7'],
    }).jobs;
    expect(job).toMatchObject({ gpuModels: ['V100M16', 'V100M32'], nodeSelector: { zone: 'a', rack: 'r7' } });
  });

  it('leaves gpuModels and nodeSelector out when not given', () => {
    const [job] = planSubmission({ image: 'cuda', gpu: '1' }).jobs;
    expect(job).not.toHaveProperty('gpuModels');
    expect(job).not.toHaveProperty('nodeSelector');
  });

  it('takes gpuModel and nodeSelector from a spec file; flags override the models and add selectors', () => {
    const fromFile = planSubmission({ file: 'gpu.yaml' }, { readText }).jobs[0];
    expect(fromFile).toMatchObject({ resources: { gpuMilli: 500 }, gpuModels: ['A100', 'H100'], nodeSelector: { zone: 'a' } });
    const overridden = planSubmission({ file: 'gpu.yaml', gpuModel: 'V100M32', nodeSelector: ['rack=r1'] }, { readText }).jobs[0];
    expect(overridden).toMatchObject({ gpuModels: ['V100M32'], nodeSelector: { zone: 'a', rack: 'r1' } });
  });

  it('-n copies the constraints into every job without sharing them', () => {
    const plan = planSubmission({ count: '3', time: '1', image: 'cuda', gpu: '0.5', gpuModel: 'A100', nodeSelector: ['zone=b'] });
    for (const job of plan.jobs) {
      expect(job).toMatchObject({ resources: { gpuMilli: 500 }, gpuModels: ['A100'], nodeSelector: { zone: 'b' } });
    }
    expect(plan.jobs[0].gpuModels).not.toBe(plan.jobs[1].gpuModels);
    expect(plan.jobs[0].nodeSelector).not.toBe(plan.jobs[1].nodeSelector);
  });

  it.each([
    [{ image: 'cuda', gpu: '1.5' }, /^gpu: "1.5": a job may share one GPU \(below 1\) or take whole GPUs/],
    [{ image: 'cuda', gpu: '0.0001' }, /^gpu: "0.0001" is finer than 1\/1000 of a GPU/],
    [{ image: 'cuda', gpuModel: 'V100M16' }, /^gpuModel: --gpu-model needs --gpu/],
    [{ image: 'cuda', gpu: '0', gpuModel: 'V100M16' }, /^gpuModel: --gpu-model needs --gpu/],
    [{ image: 'cuda', gpu: '1', gpuModel: 'V100 M16' }, /^gpuModel: "V100 M16" is not a list of GPU models/],
    [{ image: 'cuda', gpu: '1', gpuModel: 'V100||A100' }, /^gpuModel: /],
    [{ image: 'cuda', nodeSelector: ['zone'] }, /^nodeSelector: "zone" is not KEY=VALUE/],
    [{ count: '2', time: '1', image: 'cuda', gpuModel: 'A100' }, /^gpuModel: --gpu-model needs --gpu/],
  ])('rejects %j', (flags, message) => {
    expect(() => planSubmission(flags)).toThrowError(message);
  });

  it('rejects with a TitanError of code InvalidInput', () => {
    const err = (() => {
      try {
        planSubmission({ image: 'cuda', gpuModel: 'A100' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(TitanError);
    expect((err as TitanError).code).toBe('InvalidInput');
  });
});

describe('job results', () => {
  const job = (over: Partial<Job>): Job => ({
    id: 'x',
    name: '',
    kind: 'shell',
    command: [],
    env: {},
    resources: { cpu: 1, memory: 1, gpuMilli: 0 },
    priority: 0,
    labels: {},
    state: 'Pending',
    createdAt: 1,
    attempt: 0,
    ...over,
  });

  it('--wait exits with the job exit code, 1 when it has none', () => {
    expect(jobExitCode(job({ state: 'Succeeded', exitCode: 0 }))).toBe(0);
    expect(jobExitCode(job({ state: 'Succeeded' }))).toBe(0);
    expect(jobExitCode(job({ state: 'Failed', exitCode: 7 }))).toBe(7);
    expect(jobExitCode(job({ state: 'Failed' }))).toBe(1);
    expect(jobExitCode(job({ state: 'Failed', exitCode: 0 }))).toBe(1);
    expect(jobExitCode(job({ state: 'Cancelled' }))).toBe(1);
  });

  it('describes the outcome in one line', () => {
    expect(describeOutcome(job({ state: 'Failed', exitCode: 2, node: 'n1', startedAt: 1000, finishedAt: 4250, reason: 'exit 2' }))).toBe(
      'job x Failed (exit 2) on n1 after 3.3s: exit 2',
    );
  });

  it('status JSON always has status, node, exitCode and reason', () => {
    expect(jobStatusView(job({}))).toMatchObject({ status: 'Pending', node: null, exitCode: null, reason: null });
    expect(jobStatusView(job({ state: 'Failed', node: 'n', exitCode: 3, reason: 'r' }))).toMatchObject({
      status: 'Failed',
      node: 'n',
      exitCode: 3,
      reason: 'r',
    });
  });
});

describe('submitJobs', () => {
  const jobs = (n: number): Job[] => planSubmission({ count: String(n), time: '1' }).jobs;

  it('batches 64 per transaction with a bounded number in flight and reports progress', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const batches: number[] = [];
    const store = {
      async createJobs(batch: readonly Job[]) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        batches.push(batch.length);
        inFlight--;
      },
    };
    const progress: number[] = [];
    const all = jobs(1000);
    const result = await submitJobs(store, all, { concurrency: 4, onProgress: (done, total) => (expect(total).toBe(1000), progress.push(done)) });
    expect(result.submitted).toBe(1000);
    expect(result.transactions).toBe(16);
    expect(result.ids).toEqual(all.map((j) => j.id));
    expect(maxInFlight).toBe(4);
    expect(batches.filter((n) => n === 64)).toHaveLength(15);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(progress.at(-1)).toBe(1000);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
  });

  it('stops starting batches after a failure and says how many made it', async () => {
    let calls = 0;
    const store = {
      async createJobs() {
        calls++;
        await new Promise((r) => setTimeout(r, 1));
        if (calls === 3) throw new TitanError('Unavailable', 'etcd went away');
      },
    };
    const err = await submitJobs(store, jobs(640), { concurrency: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TitanError);
    expect((err as TitanError).code).toBe('Unavailable');
    expect((err as TitanError).message).toBe('128 of 640 jobs were submitted, then: etcd went away');
    expect(calls).toBe(3);
  });

  it('passes the first error through unchanged when nothing was submitted', async () => {
    const failure = new TitanError('Unavailable', 'down');
    const store = { createJobs: () => Promise.reject(failure) };
    await expect(submitJobs(store, jobs(10))).rejects.toBe(failure);
  });

  it('does nothing for no jobs', async () => {
    const store = { createJobs: () => Promise.reject(new Error('not called')) };
    expect(await submitJobs(store, [])).toMatchObject({ submitted: 0, transactions: 0, ids: [] });
  });
});
