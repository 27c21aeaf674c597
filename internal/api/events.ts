import { Type } from '@sinclair/typebox';
import { invalidInput, type TitanError } from '../../pkg/model/errors.js';
import { tokenCoversQueue, type ApiToken } from '../../pkg/model/token.js';
import type { ApiCache } from './cache.js';
import { EVENT_TOPICS, type ChangeEvent, type ChangeFeed, type EventTopic, type RevisionChanges } from './change-feed.js';
import { defineRoute, type RouteSpec } from './route.js';
import { ResponseStream, tokenStillValid, type Streaming } from './stream.js';

/**
 * Where a client is in the event stream: after every event of `revision`,
 * or, inside a revision of several events, after its `index`-th (0-based,
 * counting only the events this client is sent).
 */
export interface EventPosition {
  revision: bigint;
  index?: number;
}

/** `<revision>` (since, or Last-Event-ID) or `<revision>:<index>` (Last-Event-ID inside a revision of several events). */
export function parseEventPosition(text: string, field: string): EventPosition {
  const match = /^\s*(\d+)(?::(\d+))?\s*$/.exec(text);
  if (!match) throw invalidInput(field, `"${text}" is not a revision (the id of an event, or X-Titan-Index)`);
  return { revision: BigInt(match[1]), ...(match[2] !== undefined ? { index: Number(match[2]) } : {}) };
}

export function parseTopics(text: string | undefined): Set<EventTopic> {
  if (text === undefined || text.trim() === '') return new Set(EVENT_TOPICS);
  const topics = new Set<EventTopic>();
  for (const raw of text.split(',')) {
    const topic = raw.trim();
    if (!(EVENT_TOPICS as readonly string[]).includes(topic)) throw invalidInput('topic', `"${topic}" is not a topic (use ${EVENT_TOPICS.join(', ')})`);
    topics.add(topic as EventTopic);
  }
  return topics;
}

/** A queue-scoped token is sent its queues' jobs and queues only (and every node: a node record names no job). */
function visibleTo(token: ApiToken | undefined, e: ChangeEvent): boolean {
  if (!token || token.queues === undefined) return true;
  if (e.topic === 'jobs') return e.queue !== undefined && tokenCoversQueue(token, e.queue);
  if (e.topic === 'queues') return tokenCoversQueue(token, e.id);
  return true;
}

/**
 * The events of revisions as one client sees them, each with the id it
 * resumes from: `<revision>` on the last event of a revision, and
 * `<revision>:<index>` on the ones before it, so a client cut off inside a
 * transaction of many changes gets exactly the rest of it.
 */
export function clientEvents(
  batches: readonly RevisionChanges[],
  filter: { topics: ReadonlySet<EventTopic>; token?: ApiToken; after?: EventPosition },
): { id: string; event: EventTopic; data: Record<string, unknown> }[] {
  const out: { id: string; event: EventTopic; data: Record<string, unknown> }[] = [];
  const { after } = filter;
  for (const batch of batches) {
    if (after && batch.revision < after.revision) continue;
    let first = 0;
    if (after && batch.revision === after.revision) {
      if (after.index === undefined) continue;
      first = after.index + 1;
    }
    const visible = batch.events.filter((e) => filter.topics.has(e.topic) && visibleTo(filter.token, e));
    for (let i = first; i < visible.length; i++) {
      const e = visible[i];
      out.push({
        id: i === visible.length - 1 ? String(batch.revision) : `${batch.revision}:${i}`,
        event: e.topic,
        data: { type: e.type, topic: e.topic, id: e.id, revision: e.revision, ...(e.value !== undefined ? { value: e.value } : {}) },
      });
    }
  }
  return out;
}

export function eventRoutes(cache: ApiCache, feed: ChangeFeed, streaming: Streaming): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/events',
      tag: 'events',
      summary: 'Server-Sent Events of changes to jobs, nodes and queues, in revision order; a compacted since is 410 (list again)',
      permission: 'read',
      query: Type.Object({
        since: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: "changes after this revision (an X-Titan-Index, or an event's id); default: from now" })),
        topic: Type.Optional(Type.String({ description: `topics, comma-separated: ${EVENT_TOPICS.join(',')} (default all)` })),
      }),
      headers: Type.Object({
        'last-event-id': Type.Optional(Type.String({ description: 'the id of the last event received (overrides since): the stream resumes after it' })),
      }),
      response: {
        mediaType: 'text/event-stream',
        description: 'an `open` event (its id the starting point), then one event per change: event <topic>, id <revision>, data {type, topic, id, revision, value?}; keep-alive comments',
      },
      async handler({ query, token, request, reply }) {
        const topics = parseTopics(query.topic);
        const lastEventId = request.headers['last-event-id'] as string | undefined;
        const after =
          lastEventId !== undefined && lastEventId.trim() !== ''
            ? parseEventPosition(lastEventId, 'Last-Event-ID')
            : query.since !== undefined
              ? parseEventPosition(query.since, 'since')
              : undefined;
        // Until the stream is open (which must wait for a 410 or 400 to be ruled out), changes are held.
        const opening: { stream?: ResponseStream; held: RevisionChanges[]; broken?: TitanError } = { held: [] };
        const write = (stream: ResponseStream, batches: readonly RevisionChanges[]): void => {
          for (const e of clientEvents(batches, { topics, token, after })) stream.send(e);
        };
        const from = after === undefined ? undefined : after.index === undefined ? after.revision + 1n : after.revision;
        const subscription = await feed.subscribe(from, {
          changes: (batches) => (opening.stream ? write(opening.stream, batches) : void opening.held.push(...batches)),
          broken: (err) => (opening.stream ? opening.stream.fail(err) : (opening.broken = err)),
        });
        const stream = new ResponseStream(reply, { format: 'sse', ...streaming, stillAllowed: () => (token ? tokenStillValid(cache, token) : undefined) });
        stream.signal.addEventListener('abort', () => subscription.close(), { once: true });
        const start = after ?? { revision: subscription.from - 1n };
        const startId = start.index === undefined ? String(start.revision) : `${start.revision}:${start.index}`;
        stream.send({ event: 'open', id: startId, data: { revision: String(start.revision), topics: [...topics] } });
        write(stream, opening.held);
        opening.stream = stream;
        if (opening.broken) stream.fail(opening.broken);
        return undefined;
      },
    }),
  ];
}
