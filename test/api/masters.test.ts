import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startMasterApi } from '../../internal/api/master-api.js';
import type { ApiServer } from '../../internal/api/server.js';
import { planToken } from '../../internal/cli/tokens.js';
import type { Master } from '../../internal/master/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { startMaster, startTestWorker, waitFor, type TestWorker } from '../worker/helpers.js';

const suite = etcdSuite('api-masters');
const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanups.splice(0).reverse()) await step().catch(() => undefined);
});

async function masterWithApi(prefix: string): Promise<{ master: Master; api: ApiServer }> {
  const master = await startMaster(suite.etcd.endpoints, prefix);
  const api = await startMasterApi(master, { listen: '127.0.0.1:0' }, silent);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await api.close();
    await master.stop();
  };
  cleanups.push(stop);
  return { master, api: { ...api, close: stop } };
}

async function get<T>(api: ApiServer, path: string, secret: string): Promise<T> {
  const res = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${secret}` } });
  return (await res.json()) as T;
}

async function submitAndFinish(api: ApiServer, secret: string, script: string): Promise<{ state: string; node: string }> {
  const res = await fetch(`${api.url}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ shell: script }),
  });
  expect(res.status).toBe(201);
  const { id } = (await res.json()) as { id: string };
  return waitFor('the job to end', async () => {
    const job = await get<{ state: string; node: string }>(api, `/v1/jobs/${id}`, secret);
    return job.state === 'Succeeded' || job.state === 'Failed' ? job : undefined;
  });
}

describe('the API on several masters', () => {
  it('is served by every master; only the leader schedules; a follower that takes over keeps answering', async () => {
    const worker: TestWorker = await startTestWorker(suite.etcd.endpoints, { executors: 'shell' });
    cleanups.push(() => worker.stop());
    const prefix = worker.config.prefix;
    const a = await masterWithApi(prefix);
    const b = await masterWithApi(prefix);
    const { token, secret } = planToken({ role: 'submitter' });
    await worker.store.createToken(token);
    const leader = await waitFor('a leader', async () => (a.master.isLeader() ? a : b.master.isLeader() ? b : undefined));
    const follower = leader === a ? b : a;
    await waitFor('the follower to know the token', async () => follower.api.cache.tokens.get(token.id));

    const health = async (api: ApiServer) => (await fetch(`${api.url}/healthz`)).json() as Promise<{ leader: boolean; synced: boolean }>;
    expect(await health(follower.api)).toMatchObject({ leader: false, synced: true });
    expect(await health(leader.api)).toMatchObject({ leader: true, synced: true });

    // Written through the follower, placed by the leader.
    expect(await submitAndFinish(follower.api, secret, 'echo via follower')).toMatchObject({ state: 'Succeeded', node: worker.config.nodeId });
    const nodes = await get<{ id: string; leader: string }[]>(follower.api, '/v1/nodes', secret);
    expect(nodes.map((n) => n.id)).toEqual([worker.config.nodeId]);
    expect(nodes[0].leader).toBe(leader.master.config.id);

    await leader.api.close();
    await waitFor('the follower to lead', async () => follower.master.isLeader() || undefined, 20_000);
    expect(await submitAndFinish(follower.api, secret, 'echo after failover')).toMatchObject({ state: 'Succeeded' });
  });
});
