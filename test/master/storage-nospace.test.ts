import { GRPCResourceExhastedError } from 'etcd3';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Master, resolveMasterConfig } from '../../internal/master/index.js';
import { buildJobSpec, isTitanError, newJobId, type Job } from '../../pkg/model/index.js';
import { Store } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { randomPrefix, waitFor } from '../harness/wait.js';

const MiB = 2 ** 20;

describe("master: etcd's own NOSPACE alarm", () => {
  let etcd: EtcdServer;
  let master: Master | undefined;
  let store: Store | undefined;

  beforeAll(async () => {
    etcd = await startEtcd({ name: 'storage-nospace', args: ['--quota-backend-bytes', String(4 * MiB)] });
  });
  afterAll(async () => {
    await master?.stop();
    store?.close();
    await etcd?.stop();
  });

  it('counts as storage full: a submit is refused with "cluster storage full" and the NOSPACE fix, and the master stays up', async () => {
    const prefix = randomPrefix();
    store = new Store({ endpoints: [etcd.endpoints], prefix });
    // The master leads before etcd fills up (under NOSPACE no new leader could even be elected).
    master = new Master({ ...resolveMasterConfig({ endpoints: etcd.endpoints, prefix, leaseTtl: '2' }, {}), storageCheckMs: 200 }, pino({ level: 'silent' }));
    await master.start();
    await waitFor('leadership', () => master?.isLeader() || undefined);
    expect(master.retention.underPressure).toBe(false);

    // Filled past its quota by another application (its own client): etcd raises NOSPACE and refuses every write.
    const other = new Store({ endpoints: [etcd.endpoints], prefix: '/other-app' });
    const filler = Buffer.alloc(256 * 1024, 'x');
    // Until etcd says it is out of space (RESOURCE_EXHAUSTED): a put that only timed out on a busy machine is not that.
    for (let i = 0; i < 80; i++) {
      const failure = await other.client.put(`/other-app/blob-${i}`).value(filler).then(() => undefined, (err: unknown) => err);
      if (failure instanceof GRPCResourceExhastedError) break;
    }
    other.close();
    const alarms = await store.client.maintenance.alarm({ action: 'Get', memberID: 0, alarm: 'None' });
    expect(alarms.alarms.map((a) => String(a.alarm))).toContain('Nospace');

    // The master's own quota flag is left at its default (2 GiB): the alarm alone says full.
    await waitFor('retention under pressure', () => master?.retention.underPressure || undefined, 15_000);

    const job: Job = { ...buildJobSpec({ image: 'busybox', cmd: 'true' }), id: newJobId(), state: 'Pending', createdAt: Date.now(), attempt: 0 };
    const refused = await store.createJobs([job]).catch((err: unknown) => err);
    expect(isTitanError(refused, 'ResourceExhausted')).toBe(true);
    expect((refused as Error).message).toMatch(/^cluster storage full: .*NOSPACE alarm: an operator must compact and defragment etcd, then run 'etcdctl alarm disarm'/);
    // A refused write opens this client's circuit breaker for a while (etcd3 retries it as recoverable): read with another.
    const reader = new Store({ endpoints: [etcd.endpoints], prefix });
    try {
      expect(await reader.getJob(job.id)).toBeUndefined();
    } finally {
      reader.close();
    }
    // The master publishes nothing under NOSPACE (etcd would refuse it): it keeps leading and watching.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(master.isLeader()).toBe(true);
    expect(master.retention.underPressure).toBe(true);
  }, 60_000);
});
