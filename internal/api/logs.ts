import { Type } from '@sinclair/typebox';
import { parseJobRef } from '../../pkg/model/array.js';
import { invalidInput } from '../../pkg/model/errors.js';
import { isFinal, type Job } from '../../pkg/model/job.js';
import type { LogChunk } from '../../pkg/model/logs.js';
import type { Store } from '../../pkg/store/store.js';
import { arrayNeedsIndex, mayBeArrayId, readArrayTasks } from '../cli/arrays.js';
import { followLogChunks, parseAttempt, readAttemptLogs, type LogPosition } from '../cli/follow-logs.js';
import type { ApiCache } from './cache.js';
import { toTitanError } from './errors.js';
import { requireVisibleJob, ROUTE_JOB_ID } from './jobs.js';
import { defineRoute, type RouteSpec } from './route.js';
import { CONTENT_TYPE, formatSse, ResponseStream, streamFormatOf, tokenStillValid, type StreamFormat, type Streaming } from './stream.js';

/** `Last-Event-ID` of a log stream: `<attempt>:<seq>`, the last chunk the client has. */
export function parseLogEventId(text: string | undefined): LogPosition | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const match = /^\s*(\d+):(-1|\d+)\s*$/.exec(text);
  if (!match || Number(match[1]) < 1) throw invalidInput('Last-Event-ID', `"${text}" is not <attempt>:<seq> (the id of a log event)`);
  return { attempt: Number(match[1]), seq: Number(match[2]) };
}

export function logEventId(attempt: number, seq: number): string {
  return `${attempt}:${seq}`;
}

/** The `end` event: how the job (and the attempt followed, when it is an earlier one) ended. */
export function logEnd(job: Job, attempt: number): Record<string, unknown> {
  const record = attempt === job.attempt ? undefined : job.history?.find((h) => h.attempt === attempt);
  return {
    job: job.id,
    state: job.state,
    exitCode: job.exitCode ?? null,
    reason: job.reason ?? null,
    final: isFinal(job.state),
    attempt,
    ...(record ? { attemptState: record.state, attemptExitCode: record.exitCode ?? null } : {}),
  };
}

/** A chunk in each format: one event (its id the resume point), a JSON line per entry, or the bare output. */
function formatChunk(format: StreamFormat, chunk: LogChunk, attempt: number): string {
  if (format === 'sse') return formatSse({ event: 'log', id: logEventId(attempt, chunk.seq), data: { attempt, seq: chunk.seq, entries: chunk.entries } });
  if (format === 'ndjson') return chunk.entries.map((e) => `${JSON.stringify({ attempt, seq: chunk.seq, stream: e.stream, data: e.data })}\n`).join('');
  return chunk.entries.map((e) => e.data).join('');
}

function formatEnd(format: StreamFormat, end: Record<string, unknown>): string {
  if (format === 'sse') return formatSse({ event: 'end', data: end });
  if (format === 'ndjson') return `${JSON.stringify({ end })}\n`;
  return '';
}

const FORMATS = ['text/plain', 'application/x-ndjson', 'text/event-stream'] as const;

export function logRoutes(cache: ApiCache, store: Store, streaming: Streaming): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/jobs/:id/logs',
      tag: 'jobs',
      summary:
        "A job's output: the attempt so far, or with follow=1 as it comes until the job ends (Accept: text/event-stream for events, application/x-ndjson for JSON lines, else plain text)",
      permission: 'read',
      params: Type.Object({ id: Type.String({ pattern: ROUTE_JOB_ID, description: 'job id, or ID[index]: one task of an array' }) }),
      query: Type.Object({
        attempt: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: "one attempt (1, 2, ...); default: the latest, and with follow each new one" })),
        follow: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('true'), Type.Literal('0'), Type.Literal('false')], { description: 'stream until the job ends' })),
      }),
      headers: Type.Object({
        'last-event-id': Type.Optional(Type.String({ description: '<attempt>:<seq> of the last log event received: the stream resumes after it' })),
      }),
      response: { mediaType: FORMATS, description: 'the output; an event stream sends `log` events (id <attempt>:<seq>), `notice`, keep-alive comments, and ends with `end` (state, exit code)' },
      async handler({ params, query, token, request, reply }) {
        const ref = parseJobRef(params.id);
        const stored = (await store.getJob(ref.id))?.value;
        if (!stored && !ref.task && mayBeArrayId(ref.id)) {
          // An array has no output of its own: ask for one task (what titan logs says too).
          const [first] = await readArrayTasks(store, ref.id, 1);
          if (first) throw arrayNeedsIndex(ref.id, requireVisibleJob(first.value, params.id, token), 'logs');
        }
        const job = requireVisibleJob(stored, params.id, token);
        const attempt = parseAttempt(query.attempt);
        const after = parseLogEventId(request.headers['last-event-id'] as string | undefined);
        if (attempt !== undefined && attempt > job.attempt) throw invalidInput('attempt', `job ${job.id} has had ${job.attempt} attempt(s)`);
        if (after && (after.attempt > job.attempt || (attempt !== undefined && after.attempt !== attempt))) {
          throw invalidInput('Last-Event-ID', `${logEventId(after.attempt, after.seq)} is not a position in ${attempt !== undefined ? `attempt ${attempt}` : 'this job'}'s output`);
        }
        const format = streamFormatOf(request);
        const follow = query.follow === '1' || query.follow === 'true';

        if (!follow) {
          const read = await readAttemptLogs(store, job.id, after?.attempt ?? attempt, after?.seq);
          const body = read.chunks.map((c) => formatChunk(format, c, read.attempt)).join('') + formatEnd(format, logEnd(read.job, read.attempt));
          void reply.type(CONTENT_TYPE[format]).header('x-titan-attempt', String(read.attempt));
          return body;
        }

        const stream = new ResponseStream(reply, { format, ...streaming, stillAllowed: () => (token ? tokenStillValid(cache, token) : undefined) });
        followLogChunks(store, job.id, {
          attempt,
          after,
          signal: stream.signal,
          chunk: (chunk, chunkAttempt) => stream.write(formatChunk(format, chunk, chunkAttempt)),
          notice: (message) => {
            if (format === 'sse') stream.send({ event: 'notice', data: { message } });
          },
        }).then(
          (last) => {
            if (stream.closed) return; // the client left, or the server closes: no end, so a client resumes
            stream.write(formatEnd(format, logEnd(last, attempt ?? last.attempt)));
            stream.end();
          },
          (err: unknown) => stream.fail(toTitanError(err)),
        );
        return undefined;
      },
    }),
  ];
}
