import type { Static, TObject, TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TitanError } from '../../pkg/model/errors.js';
import { roleAllows, tokenIdOf, tokenRefusal, type ApiToken, type Permission } from '../../pkg/model/token.js';
import type { ApiCache } from './cache.js';

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** What a handler gets: the parsed parts, and the caller's token (absent only on open routes). */
export interface Call<Q, P, B> {
  query: Q;
  params: P;
  body: B;
  token: ApiToken | undefined;
  request: FastifyRequest;
  reply: FastifyReply;
}

/**
 * One route of the API, described once: fastify validates query and path
 * parameters with these schemas, /openapi.json is generated from them, and
 * `permission` is what the caller's token must allow (`open`: no token).
 * A `body` schema is documented but not checked by fastify: the handler runs
 * it through the one validator the CLI uses too.
 */
export interface RouteSpec<Q extends TObject = TObject, P extends TObject = TObject, B extends TSchema = TSchema> {
  method: Method;
  url: string;
  summary: string;
  tag: string;
  permission: Permission | 'open';
  query?: Q;
  params?: P;
  /** Request headers the route reads (e.g. Last-Event-ID), validated and documented like the query. */
  headers?: TObject;
  body?: B;
  /** The 200 response: a schema of the JSON document, or the media types of a stream. */
  response?: TSchema | { mediaType: string | readonly string[]; description: string };
  /** Documented index/wait parameters and X-Titan-Index header. */
  blocking?: boolean;
  handler(call: Call<Static<Q>, Static<P>, Static<B>>): Promise<unknown>;
}

export function defineRoute<Q extends TObject, P extends TObject, B extends TSchema>(spec: RouteSpec<Q, P, B>): RouteSpec {
  return spec as unknown as RouteSpec;
}

/** The presented bearer token, checked against the cache; Unauthenticated when missing or not valid. */
export function authenticate(request: FastifyRequest, cache: ApiCache, now = Date.now()): ApiToken {
  const header = request.headers.authorization;
  if (header === undefined) {
    throw new TitanError('Unauthenticated', 'this call needs an API token: send "Authorization: Bearer <token>" (titan token create)');
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new TitanError('Unauthenticated', 'the Authorization header must be "Bearer <token>"');
  const secret = match[1];
  const id = tokenIdOf(secret);
  const token = id === undefined ? undefined : cache.tokens.get(id)?.value;
  const refusal = tokenRefusal(token, secret, now);
  if (refusal || !token) throw refusal;
  return token;
}

export function authorize(token: ApiToken, permission: Permission): void {
  if (!roleAllows(token.role, permission)) {
    throw new TitanError('PermissionDenied', `a ${token.role} token cannot do this (it needs ${permission}); ask for a token with a role that can`);
  }
}

/** Registers the routes with fastify, each behind its token check. */
export function registerRoutes(app: FastifyInstance, routes: readonly RouteSpec[], cache: ApiCache): void {
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.url,
      schema: {
        ...(route.query ? { querystring: route.query } : {}),
        ...(route.params ? { params: route.params } : {}),
        ...(route.headers ? { headers: route.headers } : {}),
      },
      handler: async (request, reply) => {
        let token: ApiToken | undefined;
        if (route.permission !== 'open') {
          token = authenticate(request, cache);
          authorize(token, route.permission);
        }
        return route.handler({ query: request.query, params: request.params, body: request.body, token, request, reply } as Call<never, never, never>);
      },
    });
  }
}
