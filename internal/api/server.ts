import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { TitanError } from '../../pkg/model/errors.js';
import type { Store } from '../../pkg/store/store.js';
import { ApiCache } from './cache.js';
import { ChangeFeed, type ChangeFeedOptions } from './change-feed.js';
import { errorBody, httpStatusOf, toTitanError } from './errors.js';
import { eventRoutes } from './events.js';
import { jobRoutes, MAX_BODY_BYTES } from './jobs.js';
import { logRoutes } from './logs.js';
import { nodeRoutes } from './nodes.js';
import { openApiDocument } from './openapi.js';
import { overviewRoutes } from './overview.js';
import { queueRoutes } from './queues.js';
import { parseListen } from './listen.js';
import { defineRoute, registerRoutes, type RouteSpec } from './route.js';
import { DEFAULT_KEEP_ALIVE_MS, StreamRegistry, type Streaming } from './stream.js';
import { registerDashboard } from './ui.js';
import { whoamiRoutes } from './whoami.js';

/** One log line per request would drown the master's own at dashboard rates: failures are logged by the error handler. */
function quietRequests(): LogController {
  return new LogController({ disableRequestLogging: true });
}


export interface ApiServerOptions {
  /** `host:port`; port 0 picks a free one (see ApiServer.address). */
  listen: string;
  store: Store;
  logger: Logger;
  /** PEM files: with both, the listener speaks HTTPS only. */
  tls?: { certFile: string; keyFile: string };
  /** Whether this master leads (for /healthz). */
  isLeader(): boolean;
  /** Whether this master's caches caught up with etcd since it started (for /healthz); default: yes. */
  isSynced?(): boolean;
  /** The process's Prometheus exposition, served at /metrics without a token. */
  metrics?: { contentType: string; text(): Promise<string> };
  /** Event streams (logs, events) send a keep-alive comment this often (default 15 s). */
  keepAliveMs?: number;
  /** How the shared watch of /v1/events keeps revisions and lingers. */
  changeFeed?: ChangeFeedOptions;
}

export interface ApiServer {
  readonly app: FastifyInstance;
  readonly cache: ApiCache;
  /** `http(s)://host:port` it listens on. */
  readonly url: string;
  readonly routes: readonly RouteSpec[];
  /** Streams open now, and etcd watches the event feed holds (each log stream holds its own while open). */
  streamStats(): { open: number; feedWatches: number };
  close(): Promise<void>;
}

function metaRoutes(cache: ApiCache, options: ApiServerOptions, routes: () => readonly RouteSpec[]): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/healthz',
      tag: 'meta',
      summary: 'Liveness: this master serves, and whether it leads',
      permission: 'open',
      async handler() {
        return {
          ok: true,
          leader: options.isLeader(),
          synced: options.isSynced?.() ?? true,
          index: String(cache.index(['jobs', 'nodes', 'assignments', 'queues'])),
          quarantined: cache.quarantined(),
        };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/openapi.json',
      tag: 'meta',
      summary: 'This document',
      permission: 'open',
      async handler() {
        return openApiDocument(routes());
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/metrics',
      tag: 'meta',
      summary: 'Prometheus metrics (no job ids or names)',
      permission: 'open',
      response: { mediaType: 'text/plain', description: 'Prometheus text exposition' },
      async handler({ reply }) {
        if (!options.metrics) throw new TitanError('NotFound', 'this process exports no metrics');
        void reply.type(options.metrics.contentType);
        return options.metrics.text();
      },
    }),
  ];
}

/**
 * The HTTP API of one master: reads answered from its cache of etcd, writes
 * made to etcd with the CLI's validation; any master serves, only the
 * leader schedules.
 */
export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { host, port } = parseListen(options.listen);
  const https = options.tls ? { cert: fs.readFileSync(options.tls.certFile), key: fs.readFileSync(options.tls.keyFile) } : null;
  const loggerInstance = options.logger.child({ component: 'api' }) as FastifyBaseLogger;
  // One instance type for HTTP and HTTPS: the routes never look at the transport.
  const app = (https
    ? Fastify({ https, bodyLimit: MAX_BODY_BYTES, loggerInstance, logController: quietRequests() })
    : Fastify({ bodyLimit: MAX_BODY_BYTES, loggerInstance, logController: quietRequests() })) as unknown as FastifyInstance;
  const cache = new ApiCache(options.store, options.logger);
  await cache.start();
  const streaming: Streaming = { registry: new StreamRegistry(), keepAliveMs: options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS };
  const feed = new ChangeFeed(options.store, options.logger.child({ component: 'api' }), options.changeFeed);
  let routes: RouteSpec[] = [];
  routes = [
    ...metaRoutes(cache, options, () => routes),
    ...jobRoutes(cache, options.store),
    ...nodeRoutes(cache),
    ...queueRoutes(cache, options.store),
    ...logRoutes(cache, options.store, streaming),
    ...eventRoutes(cache, feed, streaming),
    ...overviewRoutes(cache),
    ...whoamiRoutes(),
  ];
  app.setErrorHandler((err, request, reply) => {
    const titan = toTitanError(err);
    if (titan.code === 'Internal') request.log.error({ err }, 'API call failed');
    void reply.code(httpStatusOf(titan.code)).send(errorBody(titan));
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody(new TitanError('NotFound', `no route ${request.method} ${request.url.split('?')[0]} (see /openapi.json)`)));
  });
  // Every answer is about this cluster now: no cache in between may keep it.
  app.addHook('onSend', async (_request, reply) => {
    if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store');
  });
  registerRoutes(app, routes, cache);
  // Open streams would hold the close forever: they end first (clients resume with Last-Event-ID).
  app.addHook('preClose', async () => streaming.registry.closeAll());
  await registerDashboard(app);
  try {
    await app.listen({ host, port });
  } catch (err) {
    await cache.stop();
    await feed.stop();
    throw new TitanError('Unavailable', `cannot listen on ${options.listen}: ${(err as Error).message}`, { cause: err });
  }
  const address = app.server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    app,
    cache,
    url: `${https ? 'https' : 'http'}://${shownHost}:${address.port}`,
    routes,
    streamStats: () => ({ open: streaming.registry.size, feedWatches: feed.watchCount() }),
    async close() {
      await app.close();
      await feed.stop();
      await cache.stop();
    },
  };
}
