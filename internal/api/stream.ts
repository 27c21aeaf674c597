import type { FastifyReply, FastifyRequest } from 'fastify';
import { TitanError } from '../../pkg/model/errors.js';
import type { ApiToken } from '../../pkg/model/token.js';
import type { ApiCache } from './cache.js';
import { errorBody } from './errors.js';

/** A keep-alive comment goes out this often on an idle event stream, so proxies and clients see it is alive. */
export const DEFAULT_KEEP_ALIVE_MS = 15_000;
/**
 * Most bytes a stream may have waiting for a slow client. Past that it is
 * ended with an error event: the client resumes with Last-Event-ID, and the
 * server never holds an unbounded backlog.
 */
export const MAX_BUFFERED_BYTES = 8 * 2 ** 20;

/** One field set of a Server-Sent Event; `data` is one line of JSON. */
export interface SseEvent {
  event?: string;
  id?: string;
  data: unknown;
}

/** The wire form of an event (the `data` as one JSON line, so it never needs splitting). */
export function formatSse(e: SseEvent): string {
  return `${e.event !== undefined ? `event: ${e.event}\n` : ''}${e.id !== undefined ? `id: ${e.id}\n` : ''}data: ${JSON.stringify(e.data)}\n\n`;
}

/** What the client asked for, from its Accept header: an event stream, NDJSON, or text (the default, so curl shows the output). */
export type StreamFormat = 'sse' | 'ndjson' | 'text';

export function streamFormatOf(request: FastifyRequest): StreamFormat {
  const accept = (request.headers.accept ?? '').toLowerCase();
  if (accept.includes('text/event-stream')) return 'sse';
  if (accept.includes('application/x-ndjson')) return 'ndjson';
  return 'text';
}

export const CONTENT_TYPE: Record<StreamFormat, string> = {
  sse: 'text/event-stream; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
  text: 'text/plain; charset=utf-8',
};

/** The open streams of one server: it ends them all before it closes (they would hold its close forever). */
export class StreamRegistry {
  private readonly open = new Set<ResponseStream>();

  add(stream: ResponseStream): void {
    this.open.add(stream);
  }

  delete(stream: ResponseStream): void {
    this.open.delete(stream);
  }

  get size(): number {
    return this.open.size;
  }

  closeAll(): void {
    for (const stream of [...this.open]) stream.end();
  }
}

/** What the streaming routes share: the server's open streams, and the keep-alive interval. */
export interface Streaming {
  registry: StreamRegistry;
  /** Event streams only: a comment line this often. */
  keepAliveMs: number;
}

/**
 * Whether a token a stream was opened with still holds: the cache drops a
 * revoked one as soon as etcd's delete is seen. A stream outliving its
 * token ends, as any later call of the token fails.
 */
export function tokenStillValid(cache: ApiCache, token: ApiToken, now = Date.now()): TitanError | undefined {
  const current = cache.tokens.get(token.id)?.value;
  if (!current || current.hash !== token.hash) return new TitanError('Unauthenticated', `the API token ${token.id} was revoked`);
  if (current.expiresAt !== undefined && current.expiresAt <= now) return new TitanError('Unauthenticated', `the API token ${token.id} expired`);
  return undefined;
}

export interface StreamOptions extends Streaming {
  format: StreamFormat;
  /** Checked at each keep-alive: a token revoked or expired since the stream opened ends it. */
  stillAllowed?: () => TitanError | undefined;
  /** Extra response headers. */
  headers?: Record<string, string>;
}

/**
 * A long response written as it goes (an event stream, or chunked text):
 * taken over from fastify once the request was checked, so errors before it
 * are still ordinary JSON errors. `signal` aborts when the client goes away,
 * the stream ends, or the server closes: whatever feeds the stream stops
 * on it and lets go of its etcd watches.
 */
export class ResponseStream {
  readonly format: StreamFormat;
  private readonly controller = new AbortController();
  private readonly keepAlive: NodeJS.Timeout | undefined;

  constructor(
    private readonly reply: FastifyReply,
    private readonly options: StreamOptions,
  ) {
    this.format = options.format;
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': CONTENT_TYPE[options.format],
      'cache-control': 'no-store',
      // Proxies (nginx) must pass each event on as it comes.
      'x-accel-buffering': 'no',
      ...options.headers,
    });
    raw.flushHeaders();
    options.registry.add(this);
    raw.once('close', () => this.end());
    if (options.format === 'sse') {
      this.keepAlive = setInterval(() => {
        const refusal = options.stillAllowed?.();
        if (refusal) this.fail(refusal);
        else this.write(': keep-alive\n\n');
      }, options.keepAliveMs);
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get closed(): boolean {
    return this.controller.signal.aborted;
  }

  /** Writes text as is; a client too slow to take it ends the stream. */
  write(text: string): void {
    if (this.closed) return;
    const raw = this.reply.raw;
    if (raw.writableLength > MAX_BUFFERED_BYTES) {
      this.fail(new TitanError('ResourceExhausted', `the client reads too slowly (over ${MAX_BUFFERED_BYTES} bytes waiting); reconnect with Last-Event-ID to resume`));
      return;
    }
    raw.write(text);
  }

  send(event: SseEvent): void {
    this.write(formatSse(event));
  }

  /** Ends the stream with an error: an `error` event in an event stream, an error line in NDJSON; text just ends. */
  fail(err: TitanError): void {
    if (this.closed) return;
    const body = errorBody(err);
    if (this.format === 'sse') this.reply.raw.write(formatSse({ event: 'error', data: body }));
    else if (this.format === 'ndjson') this.reply.raw.write(`${JSON.stringify(body)}\n`);
    this.end();
  }

  end(): void {
    if (this.closed) return;
    this.controller.abort();
    if (this.keepAlive !== undefined) clearInterval(this.keepAlive);
    this.options.registry.delete(this);
    if (!this.reply.raw.writableEnded) this.reply.raw.end();
  }
}
