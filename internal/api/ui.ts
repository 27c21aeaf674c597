import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { TitanError } from '../../pkg/model/errors.js';
import { errorBody } from './errors.js';
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_ICON } from './ui-assets.js';

/**
 * The dashboard's pages may load only what this listener serves, run no
 * inline script or style, send no form anywhere (a token typed into the login
 * form must never end up in a URL), and be framed by no one.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * What the browser may load under /ui/js/, as paths under the build root: the
 * dashboard's own modules, and the pure ones it shares with the CLI (amounts
 * and ages formatted once, job states, GPU ids). A shared module must import
 * no other module that is not listed here (test/api/dashboard.test.ts checks).
 */
const DASHBOARD_DIR = 'internal/dashboard';
export const SHARED_MODULES: ReadonlySet<string> = new Set(['internal/cli/format.js', 'pkg/model/job.js', 'pkg/model/node.js', 'pkg/model/resources.js', 'pkg/sse/parser.js']);
const MODULE_PATH = /^internal\/dashboard\/[a-z0-9-]+\.js$/;

/**
 * The build root holding the compiled browser modules: `dist/` itself when
 * this file runs from dist, `<repo>/dist` when it runs from its source (tests);
 * undefined when the dashboard was never built.
 */
export function dashboardBuildRoot(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../..'), path.resolve(here, '../../dist')];
  return candidates.find((root) => fs.existsSync(path.join(root, DASHBOARD_DIR, 'app.js')));
}

/** The compiled module a `/ui/js/<path>` names, or undefined for anything the browser has no business loading. */
export function servedModule(requested: string): { file: string; type: string } | undefined {
  const map = requested.endsWith('.js.map');
  const module = map ? requested.slice(0, -'.map'.length) : requested;
  if (!MODULE_PATH.test(module) && !SHARED_MODULES.has(module)) return undefined;
  return { file: module + (map ? '.map' : ''), type: map ? 'application/json; charset=utf-8' : 'text/javascript; charset=utf-8' };
}

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin');
}

/**
 * Serves the web dashboard at /ui/: one page whose ES modules (compiled by
 * tsc with the rest, no bundler) call the API with the token the user typed.
 * The files hold no data, so they need no token.
 */
export async function registerDashboard(app: FastifyInstance): Promise<void> {
  const root = dashboardBuildRoot();
  app.get('/ui', async (_request, reply) => secure(reply).redirect('/ui/'));
  await app.register(
    async (ui) => {
      ui.setNotFoundHandler((request, reply) => {
        void secure(reply).code(404).send(errorBody(new TitanError('NotFound', `no dashboard file ${request.url.split('?')[0]}`)));
      });
      ui.get('/', { prefixTrailingSlash: 'slash' }, async (_request, reply) => secure(reply).type('text/html; charset=utf-8').send(DASHBOARD_HTML));
      ui.get('/style.css', async (_request, reply) => secure(reply).type('text/css; charset=utf-8').send(DASHBOARD_CSS));
      ui.get('/icon.svg', async (_request, reply) => secure(reply).type('image/svg+xml').send(DASHBOARD_ICON));
      ui.get('/js/*', async (request, reply) => {
        const wanted = servedModule((request.params as { '*': string })['*']);
        if (!wanted) throw new TitanError('NotFound', `no dashboard module ${request.url}`);
        if (!root) throw new TitanError('Unavailable', 'the dashboard is not built: run npm run build (tsc)');
        // Read per request: files are small, and a rebuild (tsc --watch) shows without a restart.
        const body = await fs.promises.readFile(path.join(root, wanted.file)).catch(() => undefined);
        if (body === undefined) throw new TitanError('NotFound', `no dashboard module ${request.url}`);
        return secure(reply).type(wanted.type).send(body);
      });
    },
    { prefix: '/ui' },
  );
}
