import https from 'node:https';
import pino from 'pino';
import fs from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startApiServer, type ApiServer } from '../../internal/api/server.js';
import { openApiPath } from '../../internal/api/openapi.js';
import { planToken, type TokenFlags } from '../../internal/cli/tokens.js';
import { Store } from '../../pkg/store/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { waitFor } from '../harness/wait.js';
import { makePki } from '../security/pki.js';

const suite = etcdSuite('api');
const silent = pino({ level: 'silent' });
let server: ApiServer | undefined;
let apiStore: Store | undefined;

afterEach(async () => {
  await server?.close();
  apiStore?.close();
  server = undefined;
});

async function start(options: { tls?: { certFile: string; keyFile: string } } = {}): Promise<ApiServer> {
  apiStore = new Store({ endpoints: [suite.etcd.endpoints], prefix: suite.prefix });
  server = await startApiServer({ listen: '127.0.0.1:0', store: apiStore, logger: silent, isLeader: () => false, ...options });
  return server;
}

/** A token stored in etcd, as `titan token create` makes it; resolves once the API's cache has it. */
async function token(flags: TokenFlags): Promise<string> {
  const { token: record, secret } = planToken(flags);
  await suite.store.createToken(record);
  await waitFor('the API to see the new token', () => server?.cache.tokens.has(record.id) === true);
  return secret;
}

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Headers;
}

async function call(method: string, path: string, secret?: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${server?.url}${path}`, {
    method,
    headers: { ...(secret ? { authorization: `Bearer ${secret}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text, headers: res.headers };
}

describe('HTTP API', () => {
  it('documents every route it serves in /openapi.json, and serves it and /healthz without a token', async () => {
    const api = await start();
    const served = new Set(api.routes.map((r) => `${r.method} ${openApiPath(r.url)}`));
    const doc = await call('GET', '/openapi.json');
    expect(doc.status).toBe(200);
    const documented = new Set(Object.entries(doc.body.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)));
    expect(documented).toEqual(served);
    // Every route fastify knows (HEAD aside) is one of the described routes.
    const printed = api.app.printRoutes({ commonPrefix: false });
    for (const url of ['/v1/jobs', '/v1/nodes', '/v1/queues', '/healthz', '/openapi.json']) expect(printed).toContain(url);
    expect(doc.body.paths['/v1/jobs'].post.requestBody.content['application/json'].schema.anyOf[0].properties.image).toBeDefined();
    const health = await call('GET', '/healthz');
    expect(health).toMatchObject({ status: 200, body: { ok: true, leader: false } });
  });

  it('refuses a call without a token (401), with a bad one (401), beyond its role (403), and once revoked (401)', async () => {
    await start();
    expect((await call('GET', '/v1/jobs')).status).toBe(401);
    expect((await call('GET', '/v1/jobs', 'titan_abcdefabcdef_nope')).body.error.code).toBe('Unauthenticated');
    const reader = await token({ role: 'reader' });
    expect((await call('GET', '/v1/jobs', reader)).status).toBe(200);
    const denied = await call('POST', '/v1/jobs', reader, { shell: 'true' });
    expect(denied).toMatchObject({ status: 403, body: { error: { code: 'PermissionDenied' } } });
    const id = reader.split('_')[1];
    await suite.store.revokeToken(id);
    await waitFor('the API to drop the revoked token', () => server?.cache.tokens.has(id) === false);
    expect((await call('GET', '/v1/jobs', reader)).status).toBe(401);
    const expired = await token({ role: 'reader', ttl: '1ms' });
    // The server refuses it from its expiry on, by this process's clock.
    await waitFor('the token to expire', () => (server?.cache.tokens.get(expired.split('_')[1])?.value.expiresAt ?? Infinity) <= Date.now());
    expect((await call('GET', '/v1/jobs', expired)).body.error.message).toMatch(/expired/);
  });

  it('submits with the CLI spec validation: a bad document is 400 naming the field and writes nothing', async () => {
    await start();
    const submitter = await token({ role: 'submitter' });
    const bad = await call('POST', '/v1/jobs', submitter, { image: 'busybox', cpu: 'lots' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'InvalidInput', field: 'cpu' });
    const unknown = await call('POST', '/v1/jobs', submitter, { image: 'busybox', cpus: 2 });
    expect(unknown.body.error).toMatchObject({ code: 'InvalidInput', field: 'cpus' });
    // In a list, the second document's fault fails the whole request before anything is written.
    const list = await call('POST', '/v1/jobs', submitter, [{ shell: 'true' }, { image: 'a', shell: 'b' }]);
    expect(list.body.error).toMatchObject({ code: 'InvalidInput', field: '[1].shell' });
    const noQueue = await call('POST', '/v1/jobs', submitter, { shell: 'true', queue: 'nope' });
    expect(noQueue.body.error).toMatchObject({ code: 'InvalidInput', field: 'queue' });
    expect((await suite.store.listJobs()).items).toHaveLength(0);
  });

  it('submits, lists with filters and pages, reads one job, cancels and retries it', async () => {
    await start();
    const submitter = await token({ role: 'submitter' });
    const one = await call('POST', '/v1/jobs', submitter, { shell: 'true', name: 'one', labels: { team: 'a' } });
    expect(one.status).toBe(201);
    expect(one.body).toMatchObject({ name: 'one', state: 'Pending', kind: 'shell' });
    const many = await call('POST', '/v1/jobs', submitter, Array.from({ length: 5 }, (_, i) => ({ shell: 'true', name: `many-${i}` })));
    expect(many.body.jobs).toHaveLength(5);
    const gang = await call('POST', '/v1/jobs', submitter, { shell: 'true', replicas: 3 });
    expect(gang.body.gang.replicas).toBe(3);

    const all = await call('GET', '/v1/jobs?limit=4', submitter);
    expect(all.headers.get('x-titan-index')).toMatch(/^\d+$/);
    expect(all.body.jobs).toHaveLength(4);
    const rest = await call('GET', `/v1/jobs?limit=100&cursor=${all.body.nextCursor}`, submitter);
    expect(rest.body.jobs).toHaveLength(5);
    expect(rest.body.nextCursor).toBeNull();
    expect(new Set([...all.body.jobs, ...rest.body.jobs].map((j: { id: string }) => j.id)).size).toBe(9);
    expect((await call('GET', '/v1/jobs?label=team=a', submitter)).body.jobs.map((j: { id: string }) => j.id)).toEqual([one.body.id]);
    // Ids hold no '-': the text matches the name alone.
    expect((await call('GET', '/v1/jobs?q=many-3', submitter)).body.jobs).toHaveLength(1);
    expect((await call('GET', '/v1/jobs?state=Running', submitter)).body.jobs).toHaveLength(0);
    expect((await call('GET', '/v1/jobs?state=Sleeping', submitter)).body.error.field).toBe('state');
    // The filters and orders of titan list, by the same names (pkg/model/job-query.ts).
    const names = async (query: string): Promise<string[]> => {
      const res = await call('GET', `/v1/jobs?${query}`, submitter);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.jobs.map((j: { name: string }) => j.name);
    };
    const pending = await names('state=Pending');
    expect(await names('state=Pending&state=Running')).toEqual(pending);
    expect(await names('state=Pending&queue=default&since=1h&label=team=a')).toEqual(['one']);
    expect(await names('label=team=a&label=team=b')).toEqual([]);
    expect(await names('queue=elsewhere,nowhere')).toEqual([]);
    await suite.store.createJobs([{ ...one.body, id: '0000000000001', name: 'urgent', priority: 9, createdAt: Date.now() - 7_200_000 }]);
    await waitFor('the API to see the urgent job', () => server?.cache.jobs.has('0000000000001') === true);
    expect(await names('since=1h')).not.toContain('urgent');
    expect((await names('sort=priority&limit=2'))[0]).toBe('urgent');
    // A sorted list pages in its own order.
    const first = await call('GET', '/v1/jobs?sort=priority&limit=3', submitter);
    const second = await call('GET', `/v1/jobs?sort=priority&limit=3&cursor=${first.body.nextCursor}`, submitter);
    expect([...first.body.jobs, ...second.body.jobs].map((j: { name: string }) => j.name)).toEqual((await names('sort=priority')).slice(0, 6));
    expect((await names('sort=age')).at(-1)).toBe('urgent');
    for (const [query, field] of [['sort=name', 'sort'], ['since=soon', 'since'], ['label=team', 'label'], ['queue=a%20b', 'queue']]) {
      expect((await call('GET', `/v1/jobs?${query}`, submitter)).body.error, query).toMatchObject({ code: 'InvalidInput', field });
    }

    const status = await call('GET', `/v1/jobs/${gang.body.gang.id}`, submitter);
    expect(status.body).toMatchObject({ status: 'Pending', node: null });
    expect(status.body.replicas).toHaveLength(3);
    expect((await call('GET', '/v1/jobs/nope', submitter)).status).toBe(404);

    const cancelled = await call('POST', `/v1/jobs/${one.body.id}/cancel`, submitter);
    expect(cancelled.body.state).toBe('Cancelled');
    expect((await call('POST', `/v1/jobs/${one.body.id}/cancel`, submitter)).status).toBe(409);
    const retried = await call('POST', `/v1/jobs/${one.body.id}/retry`, submitter);
    expect(retried.body.state).toBe('Pending');
  });

  it('lists each job as it is now, after updates that neither add nor remove a job', async () => {
    await start();
    const submitter = await token({ role: 'submitter' });
    const one = await call('POST', '/v1/jobs', submitter, { shell: 'true', name: 'one' });
    await call('POST', '/v1/jobs', submitter, { shell: 'true', name: 'two' });
    // The cache follows etcd: both jobs are listed once its watch delivered them.
    await expect.poll(async () => (await call('GET', '/v1/jobs', submitter)).body.jobs.length).toBe(2);
    const first = await call('GET', '/v1/jobs', submitter);
    expect(first.body.jobs.map((j: { state: string }) => j.state)).toEqual(['Pending', 'Pending']);
    await call('POST', `/v1/jobs/${one.body.id}/cancel`, submitter);
    const next = await call('GET', `/v1/jobs?index=${first.headers.get('x-titan-index')}&wait=5s`, submitter);
    expect(next.body.jobs.map((j: { name: string; state: string }) => `${j.name} ${j.state}`)).toEqual(['two Pending', 'one Cancelled']);
  });

  it('reads its writes: a read right after a submit, cancel or queue change sees it', async () => {
    await start();
    const operator = await token({ role: 'operator' });
    for (let i = 0; i < 10; i++) {
      const { body: job } = await call('POST', '/v1/jobs', operator, { shell: 'true', name: `rw${i}` });
      expect((await call('GET', `/v1/jobs/${job.id}`, operator)).body.state).toBe('Pending');
      await call('POST', `/v1/jobs/${job.id}/cancel`, operator);
      expect((await call('GET', `/v1/jobs/${job.id}`, operator)).body.state).toBe('Cancelled');
    }
    await call('POST', '/v1/queues', operator, { name: 'rw', weight: 3 });
    expect((await call('GET', '/v1/queues', operator)).body.map((q: { name: string }) => q.name)).toContain('rw');
    await call('PATCH', '/v1/queues/rw', operator, { weight: 5 });
    expect((await call('GET', '/v1/queues', operator)).body.find((q: { name: string }) => q.name === 'rw').weight).toBe(5);
    await call('DELETE', '/v1/queues/rw', operator);
    expect((await call('GET', '/v1/queues', operator)).body.map((q: { name: string }) => q.name)).not.toContain('rw');
  });

  it('answers a blocking read when something newer exists, or when the wait is over', async () => {
    const api = await start();
    const submitter = await token({ role: 'submitter' });
    const first = await call('GET', '/v1/jobs', submitter);
    const index = first.headers.get('x-titan-index') as string;
    const started = Date.now();
    const idle = await call('GET', `/v1/jobs?index=${index}&wait=300ms`, submitter);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(idle.headers.get('x-titan-index')).toBe(index);
    // The write comes once the read waits on the cache, so that it is what wakes the read.
    const waits = vi.spyOn(api.cache, 'waitFor');
    const blocked = call('GET', `/v1/jobs?index=${index}&wait=20s`, submitter);
    await waitFor('the read to wait', () => waits.mock.calls.some(([, after]) => after === BigInt(index)));
    await call('POST', '/v1/jobs', submitter, { shell: 'true', name: 'wake' });
    const woken = await blocked;
    expect(BigInt(woken.headers.get('x-titan-index') as string)).toBeGreaterThan(BigInt(index));
    expect(woken.body.jobs.map((j: { name: string }) => j.name)).toContain('wake');
    expect((await call('GET', `/v1/jobs?index=${index}&wait=1h`, submitter)).body.error.field).toBe('wait');
  });

  it('limits a queue-scoped token to its queues: it cannot submit elsewhere nor see other jobs', async () => {
    await start();
    const operator = await token({ role: 'operator' });
    for (const name of ['team-a', 'team-b']) expect((await call('POST', '/v1/queues', operator, { name, quotaCpu: 2 })).status).toBe(201);
    const teamA = await token({ role: 'submitter', queue: ['team-a'] });
    const mine = await call('POST', '/v1/jobs', teamA, { shell: 'true', queue: 'team-a' });
    expect(mine.status).toBe(201);
    expect((await call('POST', '/v1/jobs', teamA, { shell: 'true', queue: 'team-b' })).status).toBe(403);
    expect((await call('POST', '/v1/jobs', teamA, { shell: 'true' })).status).toBe(403); // the default queue is not theirs
    const theirs = await call('POST', '/v1/jobs', operator, { shell: 'true', queue: 'team-b' });
    // Its answer came once the cache had it: what follows is hidden by the token's scope, not missing.
    expect(server?.cache.jobs.has(theirs.body.id)).toBe(true);
    expect((await call('GET', '/v1/jobs', teamA)).body.jobs.map((j: { id: string }) => j.id)).toEqual([mine.body.id]);
    expect((await call('GET', `/v1/jobs/${theirs.body.id}`, teamA)).status).toBe(404);
    expect((await call('POST', `/v1/jobs/${theirs.body.id}/cancel`, teamA)).status).toBe(404);
    expect((await call('GET', '/v1/queues', teamA)).body.map((q: { name: string }) => q.name)).toEqual(['team-a']);
    expect((await call('POST', '/v1/queues', teamA, { name: 'mine' })).status).toBe(403);
  });

  it('creates, changes and deletes queues with the CLI validation', async () => {
    await start();
    const operator = await token({ role: 'operator' });
    expect((await call('POST', '/v1/queues', operator, { name: 'q1', quotaGpu: 'lots' })).body.error.field).toMatch(/quota/);
    expect((await call('POST', '/v1/queues', operator, { name: 'q1', extra: 1 })).body.error.field).toBe('extra');
    expect((await call('POST', '/v1/queues', operator, { name: 'q1', quotaCpu: '4', weight: 2 })).status).toBe(201);
    expect((await call('POST', '/v1/queues', operator, { name: 'q1' })).status).toBe(409);
    const changed = await call('PATCH', '/v1/queues/q1', operator, { quotaGpu: 1 });
    expect(changed.body.quota.gpuMilli).toBe(1000);
    // The change's answer came once the cache had it: the list shows the change, and what it left.
    const listed = await call('GET', '/v1/queues', operator);
    expect(listed.body.find((q: { name: string }) => q.name === 'q1')).toMatchObject({ weight: 2, quota: { gpuMilli: 1000 } });
    expect((await call('DELETE', '/v1/queues/q1', operator)).body).toEqual({ deleted: 'q1' });
    expect((await call('DELETE', '/v1/queues/q1', operator)).status).toBe(404);
    expect((await call('GET', '/v1/nope', operator)).body.error.code).toBe('NotFound');
  });

  it('serves HTTPS only when given a certificate', async () => {
    const pki = makePki();
    try {
      const api = await start({ tls: { certFile: `${pki.dir}/server.pem`, keyFile: `${pki.dir}/server-key.pem` } });
      expect(api.url).toMatch(/^https:/);
      const status = await new Promise<number | undefined>((resolve, reject) => {
        https.get(`${api.url}/healthz`, { ca: fs.readFileSync(pki.ca) }, (res) => resolve(res.resume().statusCode)).on('error', reject);
      });
      expect(status).toBe(200);
      await expect(fetch(`${api.url.replace('https', 'http')}/healthz`)).rejects.toThrow();
    } finally {
      pki.remove();
    }
  });
});
