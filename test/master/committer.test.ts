import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ClusterState } from '../../internal/master/cluster-state.js';
import { Committer } from '../../internal/master/committer.js';
import { CountedStore } from '../../internal/master/counted-store.js';
import { decodePendingJob, type PendingJob } from '../../internal/master/pending-job.js';
import { buildJobSpec, newJobId, type Job, type NodeInfo } from '../../pkg/model/index.js';
import { encode, records, type Versioned } from '../../pkg/store/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';

/** The master's committer against a real etcd: placements and pending reasons, written without a scheduler. */
const suite = etcdSuite('committer');

const node: NodeInfo = {
  id: 'n1',
  hostname: 'n1',
  capacity: { cpu: 4000, memory: 2 ** 32, gpuMilli: 0 },
  gpus: [],
  labels: {},
  executors: ['shell'],
  registeredAt: 0,
  version: 'test',
};

describe('Committer', () => {
  it('commits a placement planned while its job\'s reason write is in flight from the job that write left: no conflict, no retry', async () => {
    const results: string[] = [];
    const store = new CountedStore({ endpoints: [suite.etcd.endpoints], prefix: suite.prefix }, (result) => results.push(result));
    try {
      const lease = suite.store.client.lease(30);
      await suite.store.putNode(node, await lease.grant());
      const job: Job = { ...buildJobSpec({ shell: 'true', cpu: '1' }), id: newJobId(), state: 'Pending', createdAt: Date.now(), attempt: 0 };
      await suite.store.createJobs([job]);
      const state = new ClusterState();
      const storedNode = (await suite.store.get(suite.store.keys.node('n1'), records.node)) as Versioned<NodeInfo>;
      state.resetNodes([storedNode]);
      const read = await suite.store.requireJob(job.id);
      const pending = decodePendingJob(encode(read.value));
      state.resetJobs([{ key: read.key, value: pending, modRevision: read.modRevision, createRevision: read.createRevision }]);
      const queued = state.pending.get(job.id) as PendingJob;

      let conflicts = 0;
      const committer = new Committer(store, state, pino({ level: 'silent' }), 64, 4, () => [], { onConflict: () => conflicts++, onCommitted: () => undefined });
      // One pass offers a reason; the next places the job before that write has landed.
      committer.writeReasons([{ job: queued, reason: 'waiting for capacity: test' }]);
      committer.enqueue([{ job: queued, nodeId: 'n1', gpuDevices: [], assignedAt: Date.now(), nodeCreateRevision: storedNode.createRevision }]);
      await committer.idle();

      expect(conflicts).toBe(0);
      expect(results).toEqual(['committed', 'committed']);
      const placed = await suite.store.requireJob(job.id);
      expect(placed.value).toMatchObject({ state: 'Scheduled', node: 'n1', attempt: 1 });
      expect(placed.value.reason).toBeUndefined();
      await lease.revoke();
    } finally {
      store.close();
    }
  });
});

