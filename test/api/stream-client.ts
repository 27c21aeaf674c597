import http from 'node:http';
import { TOPICS } from '../../internal/api/cache.js';
import { SseParser, type ServerEvent } from '../../pkg/sse/parser.js';
import { waitFor } from '../harness/wait.js';

/** One Server-Sent Event as a client reads it. */
export type ReadEvent = ServerEvent;

/** The events and comments (the keep-alives are tested) of a stream, and the id a reconnecting client would send as Last-Event-ID. */
export class SseReader {
  readonly events: ReadEvent[] = [];
  readonly comments: string[] = [];
  lastEventId: string | undefined;
  private readonly parser = new SseParser(
    (event) => {
      this.events.push(event);
      if (event.id !== undefined) this.lastEventId = event.id;
    },
    (comment) => this.comments.push(comment),
  );

  push(text: string): void {
    this.parser.push(text);
  }
}

/** A streamed answer being read: its status, the text so far, and its events when it is an event stream. */
export interface OpenStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  text(): string;
  sse: SseReader;
  /** Resolves once `probe` holds (checked as text arrives), or fails after `timeoutMs`. */
  waitFor(what: string, probe: () => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves when the server ends the answer. */
  ended: Promise<void>;
  /** The client goes away. */
  close(): void;
}

export interface StreamRequest {
  token?: string;
  accept?: string;
  lastEventId?: string;
}

/** GETs a streamed answer with node:http (no buffering: each write is seen as it comes). */
export function openStream(url: string, request: StreamRequest = {}): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      url,
      {
        headers: {
          ...(request.token ? { authorization: `Bearer ${request.token}` } : {}),
          ...(request.accept ? { accept: request.accept } : {}),
          ...(request.lastEventId !== undefined ? { 'last-event-id': request.lastEventId } : {}),
        },
      },
      (res) => {
        let text = '';
        const sse = new SseReader();
        const probes = new Set<() => void>();
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          sse.push(chunk);
          for (const check of [...probes]) check();
        });
        const ended = new Promise<void>((done) => {
          res.once('end', done);
          res.once('close', done);
          res.once('error', () => done());
        });
        let finished = false;
        void ended.then(() => {
          finished = true;
          for (const check of [...probes]) check();
        });
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: () => text,
          sse,
          ended,
          close: () => req.destroy(),
          waitFor: (what, probe, timeoutMs = 15_000) =>
            new Promise<void>((done, fail) => {
              const timer = setTimeout(() => {
                probes.delete(check);
                fail(new Error(`timed out waiting for ${what}; got:\n${text.slice(-2000)}`));
              }, timeoutMs);
              const check = (): void => {
                if (probe()) {
                  clearTimeout(timer);
                  probes.delete(check);
                  done();
                } else if (finished) {
                  clearTimeout(timer);
                  probes.delete(check);
                  fail(new Error(`the stream ended before ${what}; got:\n${text.slice(-2000)}`));
                }
              };
              probes.add(check);
              check();
            }),
        });
      },
    );
    req.on('error', reject);
  });
}

/** etcd's count of its watchers (all clients): what a leaked watch would raise. */
export async function etcdWatchers(etcdUrl: string): Promise<number> {
  const text = await (await fetch(`${etcdUrl}/metrics`)).text();
  const match = /^etcd_debugging_mvcc_watcher_total (\d+)/m.exec(text);
  if (!match) throw new Error('etcd exports no etcd_debugging_mvcc_watcher_total');
  return Number(match[1]);
}

/**
 * etcd's watcher count once only one idle API server's are left (its cache's,
 * a watch per topic): the watches of an earlier test's closed clients go a
 * little after their close.
 */
export async function settledEtcdWatchers(etcdUrl: string): Promise<number> {
  await waitFor(`etcd's watchers down to the API cache's ${TOPICS.length}`, async () => (await etcdWatchers(etcdUrl)) === TOPICS.length);
  return TOPICS.length;
}

export async function eventually(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  await waitFor(what, probe, timeoutMs);
}
