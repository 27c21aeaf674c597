import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../pkg/model/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { err, makeJob, out, putChunk, putJob } from '../cli/fixtures.js';
import { startTestWorker, submitAndPlace } from '../worker/helpers.js';
import { apiHarness } from './api-harness.js';
import { etcdWatchers, eventually, settledEtcdWatchers, openStream, type OpenStream } from './stream-client.js';

const suite = etcdSuite('api-logs');
const api = apiHarness(suite);

const SSE = 'text/event-stream';

function running(overrides: Partial<Job> = {}): Job {
  return makeJob({ state: 'Running', node: 'n1', attempt: 1, startedAt: Date.now(), ...overrides });
}

interface LogEvent {
  attempt: number;
  seq: number;
  entries: { stream: string; data: string }[];
}

const logEvents = (s: OpenStream): LogEvent[] => s.sse.events.filter((e) => e.event === 'log').map((e) => JSON.parse(e.data) as LogEvent);
const stdoutOf = (events: readonly LogEvent[]): string => events.flatMap((e) => e.entries).filter((e) => e.stream === 'stdout').map((e) => e.data).join('');
const endOf = (s: OpenStream): Record<string, unknown> | undefined => {
  const end = s.sse.events.find((e) => e.event === 'end');
  return end ? (JSON.parse(end.data) as Record<string, unknown>) : undefined;
};

/** `curl -N`: plain text as it comes. */
function curl(url: string, token: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sSN', '--max-time', '60', '-H', `Authorization: Bearer ${token}`, url]);
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout }));
  });
}

describe('GET /v1/jobs/{id}/logs', () => {
  it('streams a real worker\'s output as events, resumes exactly from Last-Event-ID, ends with the exit code; curl -N gets the text', async () => {
    const tw = await startTestWorker(suite.etcd.endpoints, { docker: 'off' });
    try {
      const server = await api.start({ prefix: tw.config.prefix });
      const reader = await api.token({ role: 'reader' });
      const script = 'for i in $(seq 1 40); do echo "line $i"; if [ $((i % 5)) = 0 ]; then sleep 0.3; fi; done; echo oops >&2; exit 3';
      const id = await submitAndPlace(tw.store, tw.worker.nodeId, { shell: script });
      const url = `${server.url}/v1/jobs/${id}/logs?follow=1`;
      const expected = Array.from({ length: 40 }, (_, i) => `line ${i + 1}\n`).join('');
      const plain = curl(url, reader);

      const first = await openStream(url, { token: reader, accept: SSE });
      expect(first.status).toBe(200);
      expect(first.headers['content-type']).toMatch(/^text\/event-stream/);
      await first.waitFor('two log events', () => logEvents(first).length >= 2);
      first.close();
      const before = logEvents(first);
      const resumeFrom = first.sse.lastEventId as string;
      expect(resumeFrom).toBe(`1:${before[before.length - 1].seq}`);

      const rest = await openStream(url, { token: reader, accept: SSE, lastEventId: resumeFrom });
      await rest.ended;
      const after = logEvents(rest);
      expect(after.length).toBeGreaterThan(0);
      // Chunks are the unit: the resumed stream starts at the chunk after the last one seen, none twice, none missing.
      expect([...before, ...after].map((e) => e.seq)).toEqual([...before, ...after].map((_, i) => i));
      expect(stdoutOf([...before, ...after])).toBe(expected);
      expect(endOf(rest)).toMatchObject({ job: id, state: 'Failed', exitCode: 3, final: true, attempt: 1 });
      // The end event has no id: a client that reconnects after it still resumes from its last chunk.
      expect(rest.sse.events.find((e) => e.event === 'end')?.id).toBeUndefined();

      const text = await plain;
      expect(text.code).toBe(0);
      // stderr's line comes last: the script writes it after the last stdout line and a pause.
      expect(text.stdout).toBe(`${expected}oops\n`);
    } finally {
      await tw.stop();
    }
  }, 60_000);

  it('answers the output so far as text, JSON lines or events, for the latest attempt or a chosen one', async () => {
    const server = await api.start();
    const reader = await api.token({ role: 'reader' });
    const job = running({ attempt: 2, history: [{ attempt: 1, node: 'n0', finishedAt: Date.now(), state: 'Failed', exitCode: 1 }] });
    await putJob(suite.store, job);
    await putChunk(suite.store, job.id, 1, 0, [out('old\n')], 'n0');
    await putChunk(suite.store, job.id, 2, 0, [out('a\n'), err('e\n')]);
    await putChunk(suite.store, job.id, 2, 1, [out('b\n')]);
    const url = `${server.url}/v1/jobs/${job.id}/logs`;

    const text = await fetch(url, { headers: { authorization: `Bearer ${reader}` } });
    expect(text.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(text.headers.get('x-titan-attempt')).toBe('2');
    expect(await text.text()).toBe('a\ne\nb\n');

    const ndjson = await fetch(url, { headers: { authorization: `Bearer ${reader}`, accept: 'application/x-ndjson' } });
    const lines = (await ndjson.text()).trimEnd().split('\n').map((l) => JSON.parse(l) as unknown);
    expect(lines).toEqual([
      { attempt: 2, seq: 0, stream: 'stdout', data: 'a\n' },
      { attempt: 2, seq: 0, stream: 'stderr', data: 'e\n' },
      { attempt: 2, seq: 1, stream: 'stdout', data: 'b\n' },
      { end: expect.objectContaining({ state: 'Running', final: false, attempt: 2 }) },
    ]);

    const old = await openStream(`${url}?attempt=1`, { token: reader, accept: SSE });
    await old.ended;
    expect(logEvents(old)).toEqual([{ attempt: 1, seq: 0, entries: [{ stream: 'stdout', data: 'old\n' }] }]);
    expect(old.sse.events.map((e) => e.id)).toEqual(['1:0', undefined]);
    expect(endOf(old)).toMatchObject({ attempt: 1, attemptState: 'Failed', attemptExitCode: 1 });

    const bad = await fetch(`${url}?attempt=3`, { headers: { authorization: `Bearer ${reader}` } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { field: string } }).error.field).toBe('attempt');
    const badId = await fetch(`${url}?follow=1`, { headers: { authorization: `Bearer ${reader}`, 'last-event-id': 'nope' } });
    expect(badId.status).toBe(400);
    expect((await fetch(url)).status).toBe(401);
  });

  it('follows across a retry: a client cut off in attempt 1 resumes with the rest of it, then attempt 2, then the end', async () => {
    const server = await api.start();
    const reader = await api.token({ role: 'reader' });
    const job = running();
    await putJob(suite.store, job);
    for (let seq = 0; seq < 3; seq++) await putChunk(suite.store, job.id, 1, seq, [out(`one ${seq}\n`)]);
    const url = `${server.url}/v1/jobs/${job.id}/logs?follow=1`;

    const first = await openStream(url, { token: reader, accept: SSE });
    await first.waitFor('attempt 1 so far', () => logEvents(first).length === 3);
    first.close();
    // While the client is away: more of attempt 1, then a second attempt on another node.
    for (let seq = 3; seq < 6; seq++) await putChunk(suite.store, job.id, 1, seq, [out(`one ${seq}\n`)]);
    await putJob(suite.store, { ...job, state: 'Running', node: 'n2', attempt: 2, history: [{ attempt: 1, node: 'n1', finishedAt: Date.now(), state: 'Failed' }] });
    await putChunk(suite.store, job.id, 2, 0, [out('two 0\n')], 'n2');

    const rest = await openStream(url, { token: reader, accept: SSE, lastEventId: first.sse.lastEventId });
    await rest.waitFor('attempt 2', () => logEvents(rest).some((e) => e.attempt === 2));
    await putChunk(suite.store, job.id, 2, 1, [out('two 1\n')], 'n2');
    await rest.waitFor('two 1', () => stdoutOf(logEvents(rest)).endsWith('two 1\n'));
    await putJob(suite.store, { ...job, state: 'Succeeded', exitCode: 0, node: 'n2', attempt: 2, finishedAt: Date.now() });
    await rest.ended;
    expect(rest.sse.events.filter((e) => e.event === 'log').map((e) => e.id)).toEqual(['1:3', '1:4', '1:5', '2:0', '2:1']);
    expect(stdoutOf([...logEvents(first), ...logEvents(rest)])).toBe('one 0\none 1\none 2\none 3\none 4\none 5\ntwo 0\ntwo 1\n');
    expect(endOf(rest)).toMatchObject({ state: 'Succeeded', exitCode: 0, attempt: 2 });
  });

  it('sends keep-alive comments on an idle stream, and ends it when its token is revoked', async () => {
    const server = await api.start({ keepAliveMs: 100 });
    const reader = await api.token({ role: 'reader' });
    const job = running();
    await putJob(suite.store, job);
    const stream = await openStream(`${server.url}/v1/jobs/${job.id}/logs?follow=1`, { token: reader, accept: SSE });
    await stream.waitFor('two keep-alives', () => stream.sse.comments.filter((c) => c === 'keep-alive').length >= 2);
    await suite.store.revokeToken(reader.split('_')[1]);
    await stream.ended;
    const error = stream.sse.events.find((e) => e.event === 'error');
    expect(JSON.parse(error?.data ?? '{}')).toMatchObject({ error: { code: 'Unauthenticated' } });
  });

  it('shows a queue-scoped token only its queues\' jobs', async () => {
    const server = await api.start();
    const operator = await api.token({ role: 'operator' });
    await fetch(`${server.url}/v1/queues`, { method: 'POST', headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'team-a' }) });
    const teamA = await api.token({ role: 'reader', queue: ['team-a'] });
    const theirs = running();
    const mine = running({ queue: 'team-a' });
    for (const job of [theirs, mine]) {
      await putJob(suite.store, job);
      await putChunk(suite.store, job.id, 1, 0, [out(`${job.id}\n`)]);
    }
    const hidden = await fetch(`${server.url}/v1/jobs/${theirs.id}/logs?follow=1`, { headers: { authorization: `Bearer ${teamA}` } });
    expect(hidden.status).toBe(404);
    const shown = await fetch(`${server.url}/v1/jobs/${mine.id}/logs`, { headers: { authorization: `Bearer ${teamA}` } });
    expect(await shown.text()).toBe(`${mine.id}\n`);
  });

  it('lets go of its etcd watches when clients disconnect, and when the server closes', async () => {
    const server = await api.start();
    const reader = await api.token({ role: 'reader' });
    const job = running();
    await putJob(suite.store, job);
    await putChunk(suite.store, job.id, 1, 0, [out('hi\n')]);
    const baseline = await settledEtcdWatchers(suite.etcd.url);
    const url = `${server.url}/v1/jobs/${job.id}/logs?follow=1`;
    const streams = await Promise.all(Array.from({ length: 20 }, (_, i) => openStream(url, { token: reader, ...(i % 2 ? { accept: SSE } : {}) })));
    await Promise.all(streams.map((s) => s.waitFor('the output so far', () => s.text().includes('hi'))));
    // Each follower holds a watch of the job and one of the attempt's output.
    await eventually('the followers\' watches', async () => (await etcdWatchers(suite.etcd.url)) >= baseline + 40);
    expect(server.streamStats().open).toBe(20);
    for (const s of streams) s.close();
    await eventually('no stream open', () => server.streamStats().open === 0);
    await eventually('the watches gone', async () => (await etcdWatchers(suite.etcd.url)) === baseline);

    const left = await openStream(url, { token: reader, accept: SSE });
    await left.waitFor('the output', () => logEvents(left).length === 1);
    await server.close();
    await left.ended;
    // Closed by the server without an end event: a client would resume.
    expect(endOf(left)).toBeUndefined();
    await eventually('the last watches gone', async () => (await etcdWatchers(suite.etcd.url)) < baseline);
  });
});
