import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Master, resolveMasterConfig } from '../../internal/master/index.js';
import { TEST_IMAGE } from '../harness/docker.js';
import { runCli } from '../cli/run-cli.js';
import { isTitanError, type Job } from '../../pkg/model/index.js';
import { dockerWorkerSuite, readLogs, submitJob, waitFor, waitForState } from './helpers.js';

const MiB = 2 ** 20;

describe('master: etcd storage near its quota', () => {
  const suite = dockerWorkerSuite('storage-full');

  it('past 80% of the quota, submits are refused with "cluster storage full" and nothing is written, while a running job finishes', async () => {
    const { store, config } = await suite.start();
    const { etcd } = suite;
    // A 6 MiB quota (the master's flag; etcd's own is the default): 80% is 4.8 MiB.
    const master = suite.adopt(
      new Master(
        { ...resolveMasterConfig({ endpoints: etcd.endpoints, prefix: config.prefix, leaseTtl: '2', etcdQuotaBytes: '6Mi' }, {}), storageCheckMs: 200 },
        pino({ level: process.env.LOG_LEVEL ?? 'silent' }),
      ),
    );
    await master.start();
    const running = await submitJob(store, { image: TEST_IMAGE, cmd: 'echo started; sleep 4; echo finished' });
    await waitForState(store, running.id, ['Running']);

    // Another application of a shared etcd fills it: 5 MiB outside Titan's prefix.
    const filler = Buffer.alloc(512 * 1024, 'x');
    for (let i = 0; i < 10; i++) await store.client.put(`/other-app/blob-${i}`).value(filler);
    await waitFor('the storage alarm', async () => (await store.client.get(store.keys.storageAlarm()).buffer()) ?? undefined, 10_000);

    const before = (await store.listJobs()).items.length;
    const cli = await runCli(['submit', '--image', TEST_IMAGE, '--', 'echo', 'hi'], { endpoints: etcd.endpoints, prefix: config.prefix });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/^error: cluster storage full \(etcd's database is [\d.]+ MiB of its 6 MiB quota\): new jobs are refused, running jobs go on/);
    const direct = await submitJob(store, { image: TEST_IMAGE, cmd: 'true' }).catch((err: unknown) => err);
    expect(isTitanError(direct, 'ResourceExhausted')).toBe(true);
    expect((await store.listJobs()).items.length).toBe(before);

    // The job accepted before goes on and reports its end and output.
    const done: Job = await waitForState(store, running.id, ['Succeeded', 'Failed', 'Cancelled'], 20_000);
    expect(done.state).toBe('Succeeded');
    expect((await readLogs(store, running.id)).stdout).toBe('started\nfinished\n');
    expect(master.retention.underPressure).toBe(true);

    // Space freed and given back to the file system (defragmented): below 70%, submits are accepted again.
    await store.client.delete().prefix('/other-app/');
    const { header } = await store.client.kv.range({ key: Buffer.from('/'), limit: 1 });
    await store.client.kv.compact({ revision: header.revision, physical: true });
    await store.client.maintenance.defragment({});
    await waitFor('the alarm lifted', async () => ((await store.client.get(store.keys.storageAlarm()).buffer()) === null ? true : undefined), 10_000);
    expect(dbSizeUnder(await store.client.maintenance.status(), 0.7 * 6 * MiB)).toBe(true);
    const after = await submitJob(store, { image: TEST_IMAGE, cmd: 'echo again' });
    expect((await waitForState(store, after.id, ['Succeeded', 'Failed', 'Cancelled'], 20_000)).state).toBe('Succeeded');
    expect(master.retention.underPressure).toBe(false);
  }, 90_000);
});

function dbSizeUnder(status: { dbSize: string }, bytes: number): boolean {
  return Number(status.dbSize) < bytes;
}
