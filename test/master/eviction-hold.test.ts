import type { Lease } from 'etcd3';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Master, resolveMasterConfig } from '../../internal/master/index.js';
import { buildJobSpec, buildQueue, newJobId, NO_CAUSES, type Job, type SubmitInput } from '../../pkg/model/index.js';
import { Store } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { randomPrefix, waitFor } from '../harness/wait.js';
import { answeredNode, reportEnd } from './answered-node.js';

/**
 * Room held for the job evictions were for, on a real master and etcd (the
 * test answers for the node's worker, as test/master/replay.test.ts does).
 * Victims stop one at a time: without the hold, each GPU one frees goes to a
 * job of another queue first in the fair order, and the starved job needs a
 * second round of evictions (test/unit/eviction-holds.test.ts shows that
 * case on the same pass). With it: one round, and the room is its.
 */

let etcd: EtcdServer;
beforeAll(async () => {
  etcd = await startEtcd({ name: 'eviction-hold' });
});
afterAll(async () => {
  await etcd?.stop();
});

function job(input: SubmitInput): Job {
  const id = newJobId();
  return { ...buildJobSpec({ image: 'busybox', cpu: '1', memory: '1Gi', ...input }), id, name: id, state: 'Pending', createdAt: Date.now(), attempt: 0 };
}

describe('room held for the job evictions were for', () => {
  it('one round of evictions for a starved job: the GPUs its victims free go to it, not to the jobs waiting before it', async () => {
    const prefix = randomPrefix();
    const store = new Store({ endpoints: [etcd.endpoints], prefix });
    let lease: Lease | undefined;
    let master: Master | undefined;
    try {
      await store.createQueue(buildQueue('a', { quotaGpu: '4' }));
      await store.createQueue(buildQueue('c', { quotaGpu: '2' }));
      lease = store.client.lease(10, { autoKeepAlive: true });
      await store.putNode(answeredNode('n1', 4), await lease.grant());
      master = new Master(resolveMasterConfig({ endpoints: etcd.endpoints, prefix }, {}), pino({ level: 'warn' }));
      await master.start();
      const leader = master;
      await waitFor('leadership', () => leader.isLeader());

      // Queue a fills the node with preemptible jobs; queue c (nothing running: first in the fair order) has 6 waiting.
      const fill = Array.from({ length: 4 }, () => job({ gpu: 1, queue: 'a', preemptible: true }));
      await store.createJobs(fill);
      await waitFor('the node filled', async () => (await store.listAssignments()).items.length === 4);
      const waiting = Array.from({ length: 6 }, () => job({ gpu: 1, queue: 'c' }));
      await store.createJobs(waiting);
      const big = job({ gpu: 4, queue: 'a', priority: 10 });
      await store.createJobs([big]);

      const evicting = await waitFor('the evictions', async () => {
        const items = (await store.listAssignments()).items.filter((a) => a.value.evict !== undefined);
        return items.length === 4 ? items : undefined;
      });
      const evictedIds = new Set<string>(evicting.map((a) => a.value.jobId));
      for (const victim of evicting) {
        await reportEnd(store, victim, { ...NO_CAUSES, evicted: victim.value.evict?.reason ?? '' });
        // The victim is folded back into its queue; in the meantime the master ran passes with a GPU free.
        await waitFor(`${victim.value.jobId} back in its queue`, async () => (await store.requireJob(victim.value.jobId)).value.state === 'Pending');
        const assignments = (await store.listAssignments()).items;
        for (const a of assignments) if (a.value.evict !== undefined) evictedIds.add(a.value.jobId);
        expect(assignments.map((a) => a.value.jobId).filter((id) => waiting.some((w) => w.id === id)), 'no waiting job took a freed GPU').toEqual([]);
      }
      const placed = await waitFor('the big job placed', async () => {
        const j = (await store.requireJob(big.id)).value;
        return j.state === 'Scheduled' ? j : undefined;
      });
      expect(placed.node).toBe('n1');
      expect([...evictedIds].sort(), 'one round: the four preemptible jobs, nothing else').toEqual(fill.map((f) => f.id).sort());
      expect((await store.requireJob(big.id)).value.reason).toBeUndefined();
    } finally {
      await master?.stop();
      await lease?.revoke().catch(() => undefined);
      store.close();
    }
  });
});
