import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { routeTable } from '../../internal/api/openapi.js';
import { DEFAULT_KEEP_ALIVE_MS } from '../../internal/api/stream.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { apiHarness } from './api-harness.js';

const suite = etcdSuite('api-doc');
const api = apiHarness(suite);
const DOC = path.join(import.meta.dirname, '../../docs/api.md');

describe('docs/api.md', () => {
  it('holds the table of every route the server serves, as generated from the route specs', async () => {
    const server = await api.start();
    const doc = fs.readFileSync(DOC, 'utf8');
    const table = routeTable(server.routes);
    const begin = doc.indexOf('<!-- routes:begin -->');
    const end = doc.indexOf('<!-- routes:end -->');
    expect(begin, 'docs/api.md has no <!-- routes:begin --> marker').toBeGreaterThanOrEqual(0);
    const documented = doc.slice(begin + '<!-- routes:begin -->'.length, end).trim();
    expect(documented, `docs/api.md's route table is out of date; put this between its markers:\n\n${table}\n`).toBe(table);
    // Every route of /openapi.json is in it.
    const openapi = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    for (const [p, ops] of Object.entries(openapi.paths)) for (const m of Object.keys(ops)) expect(documented).toContain(`\`${m.toUpperCase()} ${p}\``);
  });

  it('states the keep-alive interval the code uses', () => {
    expect(fs.readFileSync(DOC, 'utf8')).toContain(`every ${DEFAULT_KEEP_ALIVE_MS / 1000} s`);
  });
});
