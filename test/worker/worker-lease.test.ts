import { afterAll, describe, expect, it } from 'vitest';
import { records } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { readLogs, startTestWorker, submitAndPlace, waitFor, waitForState, type TestWorker } from './helpers.js';

describe('worker: lease loss', () => {
  let etcd: EtcdServer | undefined;
  let tw: TestWorker | undefined;

  afterAll(async () => {
    await tw?.stop().catch(() => undefined);
    await etcd?.stop();
  });

  it('registers again after etcd was away longer than the lease, and keeps serving', async () => {
    etcd = await startEtcd({ name: 'worker-lease' });
    tw = await startTestWorker(etcd.endpoints, { docker: 'off', ttl: '2' });
    const { store, worker } = tw;
    const before = await store.get(store.keys.node(worker.nodeId), records.node);
    expect(before).toBeDefined();

    // Away for more than 2 × TTL: the client declares the lease lost.
    await etcd.kill('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 5000));
    await etcd.restart();

    const after = await waitFor(
      'the node to register again',
      async () => {
        const node = await store.get(store.keys.node(worker.nodeId), records.node).catch(() => undefined);
        // The key may have outlived the old lease (etcd refreshes leases on restart): look at registeredAt.
        return node && node.value.registeredAt > (before?.value.registeredAt ?? 0) ? node : undefined;
      },
      30_000,
      200,
    );
    expect(after.value.id).toBe(worker.nodeId);

    const id = await submitAndPlace(store, worker.nodeId, { shell: 'echo back' });
    expect(await waitForState(store, id, ['Succeeded', 'Failed', 'Cancelled'])).toMatchObject({ state: 'Succeeded' });
    expect((await readLogs(store, id)).stdout).toBe('back\n');
  }, 60_000);
});
