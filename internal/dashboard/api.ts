/**
 * The dashboard's calls to the API. The token lives in sessionStorage (gone
 * with the tab, never in a URL) and travels only as "Authorization: Bearer".
 * Live pages use blocking reads (?index=N&wait=) and, for logs and events,
 * Server-Sent Events read from fetch() streams: EventSource cannot send an
 * Authorization header.
 */
import { SseParser, type ServerEvent } from '../../pkg/sse/parser.js';

const TOKEN_KEY = 'titan.token';
/** How long one blocking read waits on the server before it answers unchanged. */
export const BLOCKING_WAIT = '30s';
const RETRY_MS = 2000;

export function savedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An API error as the server words it: `{"error": {"code", "message", "field"?}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let onUnauthenticated: (err: ApiError) => void = () => {};

/** What the app does when the token stops working (revoked, expired): back to the login form. */
export function whenUnauthenticated(handler: (err: ApiError) => void): void {
  onUnauthenticated = handler;
}

/** `v1/jobs` → the API's URL, relative to the dashboard's own (so a proxy's path prefix is kept). */
export function apiUrl(path: string): string {
  return new URL(`../${path}`, document.baseURI).toString();
}

function headers(accept: string): Record<string, string> {
  const token = savedToken();
  return { accept, ...(token !== null ? { authorization: `Bearer ${token}` } : {}) };
}

async function failure(res: Response): Promise<ApiError> {
  let code = 'Unavailable';
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  const err = new ApiError(res.status, code, message);
  if (res.status === 401) onUnauthenticated(err);
  return err;
}

export interface Answer<T> {
  data: T;
  /** X-Titan-Index: what a blocking read waits to pass. */
  index: string | null;
}

export async function call<T>(method: 'GET' | 'POST', path: string, signal?: AbortSignal): Promise<Answer<T>> {
  const res = await fetch(apiUrl(path), { method, headers: headers('application/json'), signal, cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  return { data: (await res.json()) as T, index: res.headers.get('x-titan-index') };
}

export function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

export interface WatchHandlers<T> {
  data(value: T): void;
  /** A failed read (it is retried); ok() after the next success. */
  error?(err: Error): void;
  ok?(): void;
}

/**
 * Follows a blocking read until `signal` aborts: the first call answers at
 * once, each next one when the data changed (or after BLOCKING_WAIT, then
 * asked again). Failures are reported and retried; a 401 ends it.
 */
export function watch<T>(path: string, signal: AbortSignal, handlers: WatchHandlers<T>): void {
  const sep = path.includes('?') ? '&' : '?';
  void (async () => {
    let index: string | null = null;
    while (!signal.aborted) {
      try {
        const answer: Answer<T> = await call<T>('GET', index === null ? path : `${path}${sep}index=${index}&wait=${BLOCKING_WAIT}`, signal);
        handlers.ok?.();
        if (answer.index === null || answer.index !== index) handlers.data(answer.data);
        index = answer.index;
      } catch (err) {
        if (signal.aborted || isAbort(err)) return;
        if (err instanceof ApiError && err.status === 401) return;
        handlers.error?.(err instanceof Error ? err : new Error(String(err)));
        // A 404 (the job went) is not retried: the page says so.
        if (err instanceof ApiError && err.status === 404) return;
        await sleep(RETRY_MS, signal);
      }
    }
  })();
}

/** One Server-Sent Event. */
export type StreamEvent = ServerEvent;

/**
 * The events of an SSE response (read by the one parser, pkg/sse), from a
 * fetch() body.
 */
export async function* eventStream(path: string, signal: AbortSignal, lastEventId?: string): AsyncGenerator<StreamEvent> {
  const res = await fetch(apiUrl(path), {
    headers: { ...headers('text/event-stream'), ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}) },
    signal,
    cache: 'no-store',
  });
  if (!res.ok) throw await failure(res);
  if (!res.body) throw new ApiError(res.status, 'Unavailable', 'the answer has no body to stream');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const ready: StreamEvent[] = [];
  const parser = new SseParser((event) => ready.push(event));
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.push(value);
      yield* ready.splice(0);
    }
  } finally {
    reader.releaseLock();
  }
}
