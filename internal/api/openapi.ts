import type { TObject, TSchema } from '@sinclair/typebox';
import { titanVersion } from '../worker/version.js';
import type { RouteSpec } from './route.js';

/** `/v1/jobs/:id` → `/v1/jobs/{id}` */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** A TypeBox schema as plain JSON Schema (TypeBox's symbols dropped). */
function plain(schema: TSchema): unknown {
  return JSON.parse(JSON.stringify(schema)) as unknown;
}

function parameters(schema: TObject | undefined, where: 'query' | 'path' | 'header'): unknown[] {
  if (!schema) return [];
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties).map(([name, prop]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    ...(typeof prop.description === 'string' ? { description: prop.description } : {}),
    schema: plain(prop),
  }));
}

const ERROR_RESPONSE = {
  description: 'An error: `{"error": {"code", "message", "field"?}}`',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};

/**
 * The OpenAPI 3.1 document of the routes, generated from the schemas the
 * server validates with: a route cannot be served without being described.
 */
export function openApiDocument(routes: readonly RouteSpec[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = openApiPath(route.url);
    const blocking = route.blocking
      ? [
          { name: 'index', in: 'query', required: false, description: 'answer once the data is newer than this X-Titan-Index', schema: { type: 'string' } },
          { name: 'wait', in: 'query', required: false, description: 'longest a blocking read waits (e.g. 30s; at most 5m)', schema: { type: 'string' } },
        ]
      : [];
    const ok =
      route.response === undefined
        ? { description: 'OK' }
        : 'mediaType' in route.response
          ? { description: route.response.description, content: Object.fromEntries([route.response.mediaType].flat().map((type) => [type, {}])) }
          : { description: 'OK', content: { 'application/json': { schema: plain(route.response) } } };
    (paths[path] ??= {})[route.method.toLowerCase()] = {
      summary: route.summary,
      tags: [route.tag],
      ...(route.permission === 'open' ? { security: [] } : { 'x-titan-permission': route.permission }),
      parameters: [...parameters(route.params, 'path'), ...parameters(route.query, 'query'), ...parameters(route.headers, 'header'), ...blocking],
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: plain(route.body) } } } } : {}),
      responses: {
        '200': route.blocking ? { ...ok, headers: { 'X-Titan-Index': { description: 'the etcd revision this answer is current as of', schema: { type: 'string' } } } } : ok,
        default: ERROR_RESPONSE,
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Titan API', version: titanVersion() },
    paths,
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token from titan token create' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } },
            },
          },
        },
      },
    },
  };
}

/**
 * The routes as a Markdown table, for docs/api.md (a test checks the doc
 * holds exactly this, so the doc cannot drift from the routes served).
 */
export function routeTable(routes: readonly RouteSpec[]): string {
  const rows = [...routes]
    .sort((a, b) => (a.url === b.url ? a.method.localeCompare(b.method) : a.url.localeCompare(b.url)))
    .map((r) => `| \`${r.method} ${openApiPath(r.url)}\` | ${r.permission === 'open' ? 'none' : r.permission} | ${r.summary.replace(/\|/g, '\\|')} |`);
  return ['| Route | Token must allow | What it does |', '| --- | --- | --- |', ...rows].join('\n');
}
