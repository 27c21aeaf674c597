import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { records } from '../../pkg/store/index.js';
import type { WorkerFlags } from '../../internal/worker/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { placeJobs, readLogs, startTestWorker, submitAndPlace, waitForState, type TestWorker } from './helpers.js';
import { newJobId, type Job } from '../../pkg/model/index.js';

const FINAL = ['Succeeded', 'Failed', 'Cancelled'] as const;
const SECRET = 'TITAN_BOX_TEST_SECRET';

/** Shell jobs (docs/security.md, "Jobs in their box"): off unless asked for, and never the worker's environment. */
describe('worker: shell jobs in their box', () => {
  let etcd: EtcdServer;
  let tw: TestWorker | undefined;

  beforeAll(async () => {
    etcd = await startEtcd({ name: 'worker-shell-box' });
  });
  afterEach(async () => {
    await tw?.stop();
    tw = undefined;
    delete process.env.WORKER_CLOUD_KEY;
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  const start = async (flags: WorkerFlags = {}): Promise<TestWorker> => {
    tw = await startTestWorker(etcd.endpoints, { docker: 'off', ...flags });
    return tw;
  };

  it('gets PATH, HOME, its own env and TITAN_*, never a secret of the worker\'s environment', async () => {
    // The worker's own environment: what a credential handed to the daemon looks like.
    process.env.WORKER_CLOUD_KEY = SECRET;
    const { store, worker } = await start({ executors: 'shell' });
    const id = await submitAndPlace(store, worker.nodeId, { shell: 'env | sort', env: ['MINE=1'] });
    expect(await waitForState(store, id, [...FINAL])).toMatchObject({ state: 'Succeeded' });
    const { stdout } = await readLogs(store, id);
    expect(stdout).not.toContain(SECRET);
    const names = stdout.trim().split('\n').map((line) => line.slice(0, line.indexOf('=')));
    // sh adds PWD (and SHLVL on some shells) itself; nothing else comes from the worker.
    const shellOwn = new Set(['PWD', 'SHLVL', 'OLDPWD', '_']);
    expect(names.filter((n) => !shellOwn.has(n)).sort()).toEqual(['HOME', 'MINE', 'PATH', 'TITAN_ATTEMPT', 'TITAN_JOB_ID', 'TITAN_NODE_ID']);
  });

  it('runs in its own process group and session', async () => {
    const { store, worker } = await start({ executors: 'shell' });
    // Fields 5 and 6 of /proc/<pid>/stat: process group and session; both equal the job's own pid.
    const id = await submitAndPlace(store, worker.nodeId, { shell: 'echo $$; cut -d" " -f5,6 /proc/$$/stat' });
    expect(await waitForState(store, id, [...FINAL])).toMatchObject({ state: 'Succeeded' });
    const [pid, ids] = (await readLogs(store, id)).stdout.trim().split('\n');
    expect(ids).toBe(`${pid} ${pid}`);
    expect(Number(pid)).not.toBe(process.pid);
  });

  it('--shell-user runs the job as that uid:gid, without the worker\'s groups, from a directory it may enter', async () => {
    expect(process.getuid?.(), 'this test switches user, so it runs as root').toBe(0);
    const { store, worker } = await start({ executors: 'shell', shellUser: '65534:65534' });
    const id = await submitAndPlace(store, worker.nodeId, { shell: 'id -u; id -g; id -G; pwd' });
    expect(await waitForState(store, id, [...FINAL])).toMatchObject({ state: 'Succeeded' });
    expect((await readLogs(store, id)).stdout).toBe('65534\n65534\n65534\n/\n');
  });

  it('a shell job record with a TITAN_* env key (written around titan submit) fails to start, and nothing runs', async () => {
    const { store, worker } = await start({ executors: 'shell' });
    const job: Job = {
      name: '', kind: 'shell', command: ['/bin/sh', '-c', 'echo ran'], env: { TITAN_JOB_ID: 'another-job' },
      resources: { cpu: 100, memory: 32 * 2 ** 20, gpuMilli: 0 }, priority: 0, labels: {},
      id: newJobId(), state: 'Pending', createdAt: Date.now(), attempt: 0,
    };
    await store.createJobs([job]);
    await placeJobs(store, worker.nodeId, [job.id]);
    expect(await waitForState(store, job.id, [...FINAL])).toMatchObject({ state: 'Failed', reason: expect.stringMatching(/env TITAN_JOB_ID is reserved/) });
    expect((await readLogs(store, job.id)).stdout).toBe('');
  });

  it('a worker without shell in --executors registers without it and refuses to start with nothing to run', async () => {
    const { store, worker } = await start({ docker: 'on', executors: 'docker' });
    const node = await store.get(store.keys.node(worker.nodeId), records.node);
    expect(node?.value.executors).toEqual(['docker']);
    await tw?.stop();
    tw = undefined;
    await expect(start({ docker: 'off', executors: 'docker' })).rejects.toThrow(/--executors: this node could run no job/);
  });
});
