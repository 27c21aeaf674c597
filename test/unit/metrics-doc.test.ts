import fs from 'node:fs';
import type { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ClusterState } from '../../internal/master/cluster-state.js';
import { MasterMetrics } from '../../internal/master/metrics.js';
import { WorkerMetrics } from '../../internal/worker/metrics.js';
import { ZERO_RESOURCES } from '../../pkg/model/index.js';

/** A metric as docs/metrics.md and a registry both describe it. */
interface Described {
  type: string;
  labels: string[];
}

/** The rows of the metric tables under a `## <section>` heading: `| \`name\` | type | \`a\`, \`b\` | meaning |`. */
function documented(doc: string, section: string): Map<string, Described> {
  const start = doc.indexOf(`\n## ${section}\n`);
  if (start < 0) throw new Error(`docs/metrics.md has no "## ${section}" section`);
  const next = doc.indexOf('\n## ', start + 1);
  const out = new Map<string, Described>();
  for (const line of doc.slice(start, next < 0 ? undefined : next).split('\n')) {
    const row = /^\| `(titan_[a-z_]+)` \| (gauge|counter|histogram|summary) \| ([^|]*) \|/.exec(line);
    if (!row) continue;
    if (out.has(row[1])) throw new Error(`${row[1]} is listed twice`);
    out.set(row[1], { type: row[2], labels: [...row[3].matchAll(/`([a-z_]+)`/g)].map((m) => m[1]).sort() });
  }
  return out;
}

function registered(registry: Registry): Map<string, Described> {
  const out = new Map<string, Described>();
  for (const metric of registry.getMetricsAsArray() as unknown as { name: string; type: string; labelNames: string[] }[]) {
    out.set(metric.name, { type: metric.type, labels: [...metric.labelNames].sort() });
  }
  return out;
}

describe('docs/metrics.md', () => {
  const doc = fs.readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');

  it('lists exactly the metrics the master registers, with their types and labels', () => {
    const metrics = new MasterMetrics({ state: new ClusterState(), queues: () => [], isRunning: () => false, isLeader: () => false, isSynced: () => false, watchCallbackFailures: () => 0 });
    expect(Object.fromEntries(documented(doc, 'Master'))).toEqual(Object.fromEntries(registered(metrics.registry)));
  });

  it('lists exactly the metrics the worker registers, with their types and labels', () => {
    const metrics = new WorkerMetrics({ nodeId: 'n1', capacity: () => ZERO_RESOURCES, allocated: () => ZERO_RESOURCES, liveRuns: () => [], registered: () => false, watchCallbackFailures: () => 0 });
    expect(Object.fromEntries(documented(doc, 'Worker'))).toEqual(Object.fromEntries(registered(metrics.registry)));
  });

  it('names no job id or name as a label', async () => {
    const master = new MasterMetrics({ state: new ClusterState(), queues: () => [], isRunning: () => false, isLeader: () => true, isSynced: () => true, watchCallbackFailures: () => 0 });
    for (const { labels } of registered(master.registry).values()) expect(labels.filter((l) => /job|name|id/.test(l))).toEqual([]);
    // A scrape of an empty master is valid exposition text.
    expect(await master.registry.metrics()).toContain('titan_master_leader 1');
  });

  it('counts watch handler failures from what the informers counted, only ever up', async () => {
    let failures = 2;
    const worker = new WorkerMetrics({ nodeId: 'n1', capacity: () => ZERO_RESOURCES, allocated: () => ZERO_RESOURCES, liveRuns: () => [], registered: () => true, watchCallbackFailures: () => failures });
    expect(await worker.registry.metrics()).toContain('titan_worker_watch_callback_failures_total 2');
    failures = 5;
    expect(await worker.registry.metrics()).toContain('titan_worker_watch_callback_failures_total 5');
    failures = 0; // a restarted informer starts again from 0: the counter stays where it was
    expect(await worker.registry.metrics()).toContain('titan_worker_watch_callback_failures_total 5');
  });
});
