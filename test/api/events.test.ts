import { describe, expect, it } from 'vitest';
import { planToken } from '../../internal/cli/tokens.js';
import type { Job } from '../../pkg/model/index.js';
import { encode } from '../../pkg/store/codec.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { nodeRecord } from '../harness/records.js';
import { makeJob, out, putChunk, putJob } from '../cli/fixtures.js';
import { apiHarness } from './api-harness.js';
import { etcdWatchers, eventually, settledEtcdWatchers, openStream, type OpenStream, type ReadEvent } from './stream-client.js';

const suite = etcdSuite('api-events');
const api = apiHarness(suite);
const SSE = 'text/event-stream';

interface ChangeData {
  type: 'put' | 'delete';
  topic: string;
  id: string;
  revision: string;
  value?: Record<string, unknown>;
}

const changes = (s: OpenStream): (ReadEvent & { change: ChangeData })[] =>
  s.sse.events.filter((e) => e.event !== 'open' && e.event !== 'error').map((e) => ({ ...e, change: JSON.parse(e.data) as ChangeData }));

function events(token: string, query = '', lastEventId?: string): Promise<OpenStream> {
  return openStream(`${api.server.url}/v1/events${query}`, { token, accept: SSE, ...(lastEventId !== undefined ? { lastEventId } : {}) });
}

async function opened(s: OpenStream): Promise<string> {
  await s.waitFor('the open event', () => s.sse.events.some((e) => e.event === 'open'));
  return s.sse.events[0].id as string;
}

/**
 * Writes a job the stream will send after everything written before it (the
 * stream is in revision order) and waits until it comes: then whatever else
 * the stream would send of those earlier writes has come too.
 */
async function marker(streams: readonly OpenStream[], queue?: string): Promise<string> {
  const job = makeJob(queue === undefined ? {} : { queue });
  await putJob(suite.store, job);
  await Promise.all(streams.map((s) => s.waitFor('the marker', () => changes(s).some((e) => e.change.id === job.id))));
  return job.id;
}

async function deleteJob(id: string): Promise<void> {
  await suite.store.client.delete().key(suite.store.keys.job(id));
}

describe('GET /v1/events', () => {
  it('sends the changes of jobs, nodes and queues in revision order, with ids that resume exactly, and nothing else', async () => {
    await api.start();
    const reader = await api.token({ role: 'reader' });
    const operator = await api.token({ role: 'operator' });
    const live = await events(reader);
    expect(live.status).toBe(200);
    const openId = await opened(live);

    const single = makeJob();
    await putJob(suite.store, single);
    const batch = [makeJob(), makeJob(), makeJob()];
    await suite.store.createJobs(batch); // one transaction: three changes of one revision
    await suite.store.client.put(suite.store.keys.node('n1')).value(encode(nodeRecord('n1')));
    await suite.store.createToken(planToken({ role: 'reader' }).token);
    await putChunk(suite.store, single.id, 1, 0, [out('not an event\n')]);
    expect((await fetch(`${api.server.url}/v1/queues`, { method: 'POST', headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'q1' }) })).status).toBe(201);
    await deleteJob(single.id);
    await live.waitFor('the delete', () => changes(live).some((e) => e.change.type === 'delete'));

    const seen = changes(live);
    expect(seen.map((e) => [e.event, e.change.type, e.change.id])).toEqual([
      ['jobs', 'put', single.id],
      ...batch.map((j) => ['jobs', 'put', j.id]),
      ['nodes', 'put', 'n1'],
      ['queues', 'put', 'q1'],
      ['jobs', 'delete', single.id],
    ]);
    const revisions = seen.map((e) => BigInt(e.change.revision));
    expect([...revisions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(revisions);
    expect(BigInt(openId)).toBeLessThan(revisions[0]);
    // The three jobs of one transaction: <revision>:<index> before the last, <revision> on it.
    const r = seen[1].change.revision;
    expect(seen.slice(1, 4).map((e) => e.id)).toEqual([`${r}:0`, `${r}:1`, r]);
    expect(seen[0].id).toBe(seen[0].change.revision);
    expect(seen[0].change.value).toMatchObject({ id: single.id, state: 'Pending', name: 'test' });
    expect(seen[4].change.value).toMatchObject({ id: 'n1', capacity: { cpu: 1000 } });
    expect(seen[6].change.value).toBeUndefined();
    live.close();

    // Resuming from any id gives exactly the rest, then what came after (the marker): from inside the transaction, after it, and from the open event.
    const resumes = await Promise.all([seen[1].id, seen[3].id, openId].map((from) => events(reader, '', from)));
    const since = await events(reader, `?since=${seen[4].change.revision}&topic=jobs,queues`);
    await Promise.all([...resumes, since].map((s) => opened(s)));
    const last = await marker([...resumes, since]);
    for (const [resumed, rest] of [
      [resumes[0], seen.slice(2)],
      [resumes[1], seen.slice(4)],
      [resumes[2], seen],
    ] as const) {
      const got = changes(resumed);
      expect(got.slice(0, -1).map((e) => [e.id, e.data])).toEqual(rest.map((e) => [e.id, e.data]));
      expect(got.map((e) => e.change.id).slice(-1)).toEqual([last]);
      resumed.close();
    }
    expect(changes(since).map((e) => e.change.id)).toEqual(['q1', single.id, last]);
    since.close();
  });

  it('resumes from before what the shared watch keeps with a watch of its own; a compacted revision is 410 Gone, a future one 400', async () => {
    await api.start({ changeFeed: { keptRevisions: 2, lingerMs: 50 } });
    const reader = await api.token({ role: 'reader' });
    const start = await suite.store.currentRevision();
    const live = await events(reader);
    await opened(live);
    const jobs = Array.from({ length: 5 }, () => makeJob());
    for (const job of jobs) await putJob(suite.store, job);
    await live.waitFor('five jobs', () => changes(live).length === 5);

    const old = await events(reader, `?since=${start}`);
    await old.waitFor('five jobs', () => changes(old).length === 5);
    expect(changes(old).map((e) => e.id)).toEqual(changes(live).map((e) => e.id));
    expect(api.server.streamStats().feedWatches).toBe(2); // the shared one, and the old reader's own
    const later = makeJob();
    await putJob(suite.store, later);
    await old.waitFor('one more', () => changes(old).length === 6);
    old.close();
    live.close();

    await suite.store.compact(await suite.store.currentRevision());
    const gone = await fetch(`${api.server.url}/v1/events?since=${start}`, { headers: { authorization: `Bearer ${reader}` } });
    expect(gone.status).toBe(410);
    expect(await gone.json()).toMatchObject({ error: { code: 'Gone', message: expect.stringMatching(/list again/) } });
    const future = await fetch(`${api.server.url}/v1/events?since=${BigInt(await suite.store.currentRevision()) + 100n}`, { headers: { authorization: `Bearer ${reader}` } });
    expect(future.status).toBe(400);
    expect(((await future.json()) as { error: { field: string } }).error.field).toBe('since');
    const badTopic = await fetch(`${api.server.url}/v1/events?topic=tokens`, { headers: { authorization: `Bearer ${reader}` } });
    expect(badTopic.status).toBe(400);
  });

  it('sends a queue-scoped token only its queues\' jobs (deletes too) and queues, and every node', async () => {
    await api.start();
    const operator = await api.token({ role: 'operator' });
    for (const name of ['team-a', 'team-b']) {
      await fetch(`${api.server.url}/v1/queues`, { method: 'POST', headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
    }
    const teamA = await api.token({ role: 'reader', queue: ['team-a'] });
    const stream = await events(teamA);
    await opened(stream);
    const mine: Job = makeJob({ queue: 'team-a' });
    const theirs: Job = makeJob({ queue: 'team-b' });
    await suite.store.createJobs([theirs, mine]);
    for (const name of ['team-b', 'team-a']) {
      await fetch(`${api.server.url}/v1/queues/${name}`, { method: 'PATCH', headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' }, body: JSON.stringify({ weight: 3 }) });
    }
    await suite.store.client.put(suite.store.keys.node('n2')).value(encode(nodeRecord('n2')));
    await deleteJob(theirs.id);
    await deleteJob(mine.id);
    const last = await marker([stream], 'team-a');
    const seen = changes(stream);
    expect(seen.map((e) => [e.change.topic, e.change.type, e.change.id])).toEqual([
      ['jobs', 'put', mine.id],
      ['queues', 'put', 'team-a'],
      ['nodes', 'put', 'n2'],
      ['jobs', 'delete', mine.id],
      ['jobs', 'put', last],
    ]);
    // Its job was the second of its transaction, but the first this token sees: ids count what the client is sent.
    expect(seen[0].id).toBe(seen[0].change.revision);
  });

  it('skips a corrupt record and goes on', async () => {
    await api.start();
    const reader = await api.token({ role: 'reader' });
    const stream = await events(reader, '?topic=jobs');
    await opened(stream);
    await suite.store.client.put(suite.store.keys.job('broken')).value(Buffer.from('not a record'));
    const good = makeJob();
    await putJob(suite.store, good);
    await stream.waitFor('the good job', () => changes(stream).length > 0);
    expect(changes(stream).map((e) => e.change.id)).toEqual([good.id]);
  });

  it('sends keep-alives, and lets go of its etcd watches once clients leave', async () => {
    await api.start({ keepAliveMs: 100, changeFeed: { lingerMs: 100 } });
    const reader = await api.token({ role: 'reader' });
    const baseline = await settledEtcdWatchers(suite.etcd.url);
    const before = BigInt(await suite.store.currentRevision()) - 1n;
    const streams = await Promise.all(Array.from({ length: 10 }, () => events(reader)));
    await Promise.all(streams.map((s) => opened(s)));
    const old = await events(reader, `?since=${before}`); // older than the shared watch: its own
    await opened(old);
    expect(api.server.streamStats()).toEqual({ open: 11, feedWatches: 2 });
    expect(await etcdWatchers(suite.etcd.url)).toBe(baseline + 2);
    await streams[0].waitFor('keep-alives', () => streams[0].sse.comments.filter((c) => c === 'keep-alive').length >= 2);
    for (const s of [...streams, old]) s.close();
    await eventually('no stream open', () => api.server.streamStats().open === 0);
    await eventually('the feed\'s watches gone', () => api.server.streamStats().feedWatches === 0);
    await eventually('etcd\'s watchers back', async () => (await etcdWatchers(suite.etcd.url)) === baseline);
  });
});
