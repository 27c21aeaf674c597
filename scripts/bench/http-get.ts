import http from 'node:http';

/**
 * The bench's HTTP client for the master's API: node:http with a keep-alive
 * agent (less CPU per call than fetch, which matters when the load and the
 * master share two cores).
 */

export interface HttpAnswer {
  status: number;
  /** X-Titan-Index of the answer. */
  index: string | undefined;
  body: string;
}

export interface GetOptions {
  agent: http.Agent;
  token?: string;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

function headersOf(options: GetOptions, accept: string): Record<string, string> {
  return { accept, ...(options.token !== undefined ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers };
}

/** GET with the whole body read as text. */
export function httpGet(url: string, options: GetOptions): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: options.agent, headers: headersOf(options, 'application/json'), signal: options.signal }, (res) => {
      res.setEncoding('utf8');
      let body = '';
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        const index = res.headers['x-titan-index'];
        resolve({ status: res.statusCode ?? 0, index: typeof index === 'string' ? index : undefined, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

export interface HttpStream {
  /** Resolves with the status once the answer's headers are in. */
  opened: Promise<number>;
  /** Resolves when the answer ends or the connection goes (rejects on a transport error). */
  closed: Promise<void>;
}

/** GET whose body is handed over as it arrives (Server-Sent Events). */
export function httpStream(url: string, options: GetOptions, onText: (text: string) => void): HttpStream {
  let opened!: (status: number) => void;
  let failed!: (err: unknown) => void;
  const openedPromise = new Promise<number>((resolve, reject) => {
    opened = resolve;
    failed = reject;
  });
  const closed = new Promise<void>((resolve, reject) => {
    const req = http.get(url, { agent: options.agent, headers: headersOf(options, 'text/event-stream'), signal: options.signal }, (res) => {
      opened(res.statusCode ?? 0);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => onText(chunk));
      res.on('end', () => resolve());
      res.on('close', () => resolve());
      res.on('error', reject);
    });
    req.on('error', (err) => {
      failed(err);
      reject(err);
    });
  });
  // Whoever awaits only one of the two must not leave the other's rejection unhandled.
  openedPromise.catch(() => undefined);
  closed.catch(() => undefined);
  return { opened: openedPromise, closed };
}
