import http from 'node:http';
import https from 'node:https';
import type { ApiConnection } from '../../pkg/config/api-connection.js';
import { TitanError, type ErrorCode } from '../../pkg/model/errors.js';
import { SseParser, type ServerEvent } from '../../pkg/sse/parser.js';

/** Deadline of one API call (blocking reads wait less than this; streams are not bounded by it). */
export const API_CALL_TIMEOUT_MS = 30_000;

const ERROR_CODES: readonly ErrorCode[] = ['InvalidInput', 'NotFound', 'Conflict', 'Unavailable', 'Unauthenticated', 'PermissionDenied', 'ResourceExhausted', 'Corrupt', 'Internal'];

/** The API's `{error: {code, message, field}}` → the same TitanError the CLI would have raised talking to etcd. */
export function errorOfBody(body: unknown): TitanError | undefined {
  const error = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } } | null)?.error;
  const code = ERROR_CODES.find((c) => c === error?.code);
  if (!code || typeof error?.message !== 'string') return undefined;
  return new TitanError(code, error.message, typeof error.field === 'string' ? { field: error.field } : undefined);
}

/** A failed answer → its TitanError; a body that is not the API's error document still gets a code from the status. */
export function apiError(status: number, text: string): TitanError {
  try {
    const err = errorOfBody(JSON.parse(text));
    if (err) return err;
  } catch {
    // not JSON: a proxy's page, say
  }
  const code: ErrorCode = status === 401 ? 'Unauthenticated' : status === 403 ? 'PermissionDenied' : status === 404 ? 'NotFound' : status >= 500 ? 'Unavailable' : 'InvalidInput';
  return new TitanError(code, `the API answered HTTP ${status}: ${text.slice(0, 200).trim() || '(no body)'}`);
}

export interface ApiResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A JSON answer with its `X-Titan-Index`, the etcd revision it reflects (what a blocking read passes as `?index=`). */
export interface IndexedAnswer<T> {
  body: T;
  index: string | undefined;
}

export type { ServerEvent } from '../../pkg/sse/parser.js';

/**
 * A client of a master's HTTP API: what every CLI verb uses when an API
 * address is configured. node:http(s) rather than fetch, so a private CA
 * (--api-cacert) can be trusted without a global setting. One keep-alive
 * agent per client, so `submit -n` reuses its connections; close() ends them.
 */
export class ApiClient {
  private readonly agent: http.Agent;

  constructor(readonly connection: ApiConnection) {
    const options = { keepAlive: true, ...(connection.ca ? { ca: connection.ca } : {}) };
    this.agent = connection.addr.startsWith('https:') ? new https.Agent(options) : new http.Agent(options);
  }

  /** One call; a non-2xx answer throws the TitanError it carries. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await this.callIndexed<T>(method, path, body)).body;
  }

  /** A call whose answer's index matters (blocking reads). */
  async callIndexed<T>(method: string, path: string, body?: unknown): Promise<IndexedAnswer<T>> {
    const res = await this.send(method, path, body, API_CALL_TIMEOUT_MS);
    if (res.status < 200 || res.status > 299) throw this.refusal(res.status, res.body);
    const index = res.headers['x-titan-index'];
    return { body: (res.body === '' ? undefined : JSON.parse(res.body)) as T, index: typeof index === 'string' ? index : undefined };
  }

  /**
   * A streamed answer (logs, events): `onData` gets the text as it comes;
   * resolves when the server ends it. A throwing `onData` ends it with that error.
   */
  stream(path: string, headers: Record<string, string>, onData: (text: string) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const req = this.request('GET', path, headers, (res) => {
        const status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        if (status < 200 || status > 299) {
          let text = '';
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => reject(this.refusal(status, text)));
          return;
        }
        let failed: unknown;
        res.on('data', (chunk: string) => {
          if (failed !== undefined) return;
          try {
            onData(chunk);
          } catch (err) {
            failed = err;
            req.destroy();
            reject(err);
          }
        });
        res.on('end', () => resolve());
        // An answer cut short (the master went away) is not an end: the caller may resume.
        res.on('aborted', () => reject(this.unavailable(new Error('the answer was cut short'))));
        res.on('error', (err) => reject(this.unavailable(err)));
      });
      req.on('error', (err) => reject(this.unavailable(err)));
      req.end();
    });
  }

  /** Server-Sent Events of a GET, each handed to `onEvent` as it comes. */
  events(path: string, onEvent: (event: ServerEvent) => void, lastEventId?: string): Promise<void> {
    const parser = new SseParser(onEvent);
    const headers: Record<string, string> = { accept: 'text/event-stream', ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}) };
    return this.stream(path, headers, (text) => parser.push(text));
  }

  /** Ends the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private refusal(status: number, text: string): TitanError {
    const err = apiError(status, text);
    if (status !== 401 || this.connection.token !== undefined) return err;
    return new TitanError(err.code, `${err.message} (no token is set: put it in TITAN_TOKEN or TITAN_TOKEN_FILE)`);
  }

  private send(method: string, path: string, body: unknown, timeoutMs: number): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<ApiResponse>((resolve, reject) => {
      const req = this.request(method, path, payload === undefined ? {} : { 'content-type': 'application/json' }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        res.on('error', (err) => reject(this.unavailable(err)));
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)));
      req.on('error', (err) => reject(this.unavailable(err)));
      req.end(payload);
    });
  }

  private request(method: string, path: string, headers: Record<string, string>, onResponse: (res: http.IncomingMessage) => void): http.ClientRequest {
    const url = new URL(`${this.connection.addr}${path}`);
    const options: https.RequestOptions = {
      method,
      agent: this.agent,
      headers: { ...headers, ...(this.connection.token ? { authorization: `Bearer ${this.connection.token}` } : {}) },
    };
    return url.protocol === 'https:' ? https.request(url, options, onResponse) : http.request(url, options, onResponse);
  }

  private unavailable(err: Error): TitanError {
    return new TitanError('Unavailable', `cannot reach the Titan API at ${this.connection.addr}: ${err.message} (is a master running with --listen? check --addr / TITAN_ADDR)`, {
      cause: err,
    });
  }
}
