import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { TitanError } from '../../pkg/model/index.js';

/** The worker's small HTTP listener: GET /metrics for Prometheus, GET /healthz for probes. Nothing else. */
export interface MetricsServer {
  /** Where it listens (the actual port when 0 was asked for). */
  readonly address: AddressInfo;
  /** Stops listening and ends open connections (a scraper's keep-alive must not hold the worker's stop). */
  close(): Promise<void>;
}

/**
 * Serves `registry` at GET /metrics. /healthz answers 200 `ok` while the
 * node is registered under a working lease, else 503 with why: a probe
 * sees a worker that cannot claim work.
 */
export async function serveMetrics(listen: { host: string; port: number }, registry: Registry, health: () => string | undefined): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (path !== '/metrics' && path !== '/healthz') return reply(404, 'not found: this listener serves /metrics and /healthz\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return reply(405, 'method not allowed\n');
    }
    if (path === '/healthz') {
      const problem = health();
      return problem === undefined ? reply(200, 'ok\n') : reply(503, `${problem}\n`);
    }
    registry.metrics().then(
      (text) => reply(200, text, registry.contentType),
      (err: unknown) => reply(500, `could not collect metrics: ${err instanceof Error ? err.message : String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = `${listen.host}:${listen.port}`;
      reject(
        err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES'
          ? new TitanError('InvalidInput', `--metrics-listen: cannot listen on ${where} (${err.code}); pick another address`)
          : err,
      );
    });
    server.listen(listen.port, listen.host, () => resolve());
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
