import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Master } from '../../internal/master/index.js';
import { buildQueue } from '../../pkg/model/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { parseExposition, sampleValue, type Sample } from '../harness/prometheus.js';
import { startMaster, startTestWorker, submitJob, waitFor, waitForState, type TestWorker } from '../worker/helpers.js';

const GiB = 2 ** 30;

/**
 * Metrics of a real cluster (etcd, an in-process master, an in-process
 * worker running shell jobs), checked by value: the master's registry as
 * the API serves it, the worker's over its own HTTP listener.
 */
describe('metrics', () => {
  const suite = etcdSuite('metrics');
  let worker: TestWorker | undefined;
  let master: Master | undefined;
  let gate: string | undefined;

  afterEach(async () => {
    await master?.stop();
    await worker?.stop();
    if (gate) fs.rmSync(gate, { force: true });
    master = worker = gate = undefined;
  });

  /** A 2-core worker with metrics on an ephemeral loopback port, and a master, on the test's prefix. */
  async function startCluster(): Promise<{ worker: TestWorker; master: Master }> {
    worker = await startTestWorker(suite.etcd.endpoints, {
      prefix: suite.prefix,
      docker: 'off',
      executors: 'shell',
      cpu: '2',
      memory: '4Gi',
      metricsListen: '127.0.0.1:0',
    });
    master = await startMaster(suite.etcd.endpoints, suite.prefix);
    return { worker, master };
  }

  const masterSamples = async (m: Master): Promise<Sample[]> => parseExposition(await m.metrics.registry.metrics());

  async function workerSamples(w: TestWorker): Promise<Sample[]> {
    const res = await fetch(`http://127.0.0.1:${w.worker.metricsAddress?.port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    return parseExposition(await res.text());
  }

  /** Waits until `check` holds for a fresh scrape, and returns that scrape. */
  function scrapeUntil(what: string, scrape: () => Promise<Sample[]>, check: (s: Sample[]) => boolean, timeoutMs = 20_000): Promise<Sample[]> {
    let last: Sample[] = [];
    return waitFor(what, async () => {
      last = await scrape();
      return check(last) ? last : undefined;
    }, timeoutMs).catch((err: Error) => {
      // What the last scrape said, for the failure message.
      throw new Error(`${err.message}; last scrape: ${JSON.stringify(last.filter((x) => !x.name.includes('_bucket')))}`);
    });
  }

  it('count pending, placed and running jobs, nodes, queues and the worker\'s runs as they are', async () => {
    const { worker: w, master: m } = await startCluster();
    const node = w.config.nodeId;
    const { store } = suite;
    await store.createQueue(buildQueue('team', { quotaCpu: '1' }));
    await store.createQueue(buildQueue('capped', { limitCpu: '0' }));
    gate = path.join(os.tmpdir(), `titan-metrics-gate-${node}`);
    // Each prints 6 bytes, then runs until the gate file exists.
    const shell = `echo hello; while [ ! -e ${gate} ]; do sleep 0.05; done`;
    const team = [];
    for (let i = 0; i < 5; i++) team.push(await submitJob(store, { shell, cpu: '1', queue: 'team' }));
    await submitJob(store, { shell, cpu: '1', queue: 'capped' });

    // Two fit the 2 cores; three wait for capacity; the capped queue's job waits for its limit.
    let s = await scrapeUntil(
      'two running, three waiting for capacity',
      () => masterSamples(m),
      (x) =>
        sampleValue(x, 'titan_jobs', { state: 'Running', queue: 'team' }) === 2 &&
        sampleValue(x, 'titan_pending_jobs', { queue: 'team', reason: 'capacity' }) === 3 &&
        sampleValue(x, 'titan_pending_jobs', { queue: 'capped', reason: 'queue-limit' }) === 1,
    );
    expect(sampleValue(s, 'titan_jobs', { state: 'Pending', queue: 'team' })).toBe(3);
    expect(sampleValue(s, 'titan_jobs', { state: 'Pending', queue: 'capped' })).toBe(1);
    expect(sampleValue(s, 'titan_jobs', { state: 'Scheduled', queue: 'team' })).toBeUndefined();
    expect(sampleValue(s, 'titan_placement_wait_seconds_count', { queue: 'team' })).toBe(2);
    expect(sampleValue(s, 'titan_placements_total', { queue: 'team' })).toBe(2);
    expect(sampleValue(s, 'titan_nodes')).toBe(1);
    expect(sampleValue(s, 'titan_node_capacity', { node, resource: 'cpu' })).toBe(2);
    expect(sampleValue(s, 'titan_node_capacity', { node, resource: 'memory' })).toBe(4 * GiB);
    expect(sampleValue(s, 'titan_node_capacity', { node, resource: 'gpu' })).toBe(0);
    expect(sampleValue(s, 'titan_node_allocated', { node, resource: 'cpu' })).toBe(2);
    expect(sampleValue(s, 'titan_queue_quota', { queue: 'team', resource: 'cpu' })).toBe(1);
    expect(sampleValue(s, 'titan_queue_quota', { queue: 'default', resource: 'cpu' })).toBe(0);
    expect(sampleValue(s, 'titan_queue_limit', { queue: 'capped', resource: 'cpu' })).toBe(0);
    expect(sampleValue(s, 'titan_queue_limit', { queue: 'capped', resource: 'memory' })).toBeUndefined();
    expect(sampleValue(s, 'titan_queue_limit', { queue: 'team', resource: 'cpu' })).toBeUndefined();
    expect(sampleValue(s, 'titan_queue_allocated', { queue: 'team', resource: 'cpu' })).toBe(2);
    // Team's quota (1 core), plus the idle core nobody else can use (capped is held at 0).
    expect(sampleValue(s, 'titan_queue_fair_share', { queue: 'team', resource: 'cpu' })).toBe(2);
    expect(sampleValue(s, 'titan_queue_fair_share', { queue: 'capped', resource: 'cpu' })).toBe(0);
    expect(sampleValue(s, 'titan_master_leader')).toBe(1);
    expect(sampleValue(s, 'titan_master_synced')).toBe(1);
    expect(sampleValue(s, 'titan_etcd_transactions_total', { result: 'committed' })).toBeGreaterThanOrEqual(2);
    expect(sampleValue(s, 'titan_scheduling_pass_duration_seconds_count')).toBeGreaterThanOrEqual(1);

    let ws = await scrapeUntil('the worker to count its two runs', () => workerSamples(w), (x) => sampleValue(x, 'titan_worker_running_jobs', { executor: 'shell' }) === 2);
    expect(sampleValue(ws, 'titan_worker_start_latency_seconds_count', { executor: 'shell' })).toBe(2);
    expect(sampleValue(ws, 'titan_worker_node_capacity', { node, resource: 'cpu' })).toBe(2);
    expect(sampleValue(ws, 'titan_worker_node_capacity', { node, resource: 'memory' })).toBe(4 * GiB);
    expect(sampleValue(ws, 'titan_worker_node_allocated', { node, resource: 'cpu' })).toBe(2);
    expect(sampleValue(ws, 'titan_worker_registered')).toBe(1);
    const health = await fetch(`http://127.0.0.1:${w.worker.metricsAddress?.port}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);

    // Open the gate: every team job runs and succeeds, two cores at a time.
    fs.writeFileSync(gate, '');
    for (const job of team) await waitForState(store, job.id, ['Succeeded'], 30_000);
    s = await scrapeUntil('five placements and no team job left', () => masterSamples(m), (x) =>
        sampleValue(x, 'titan_placement_wait_seconds_count', { queue: 'team' }) === 5 &&
        sampleValue(x, 'titan_jobs', { state: 'Running', queue: 'team' }) === undefined &&
        // The assignment's delete reaches the master's other watch after the job's final state.
        sampleValue(x, 'titan_node_allocated', { node, resource: 'cpu' }) === 0,
    );
    expect(sampleValue(s, 'titan_placements_total', { queue: 'team' })).toBe(5);
    expect(sampleValue(s, 'titan_jobs', { state: 'Pending', queue: 'team' })).toBeUndefined();
    expect(sampleValue(s, 'titan_pending_jobs', { queue: 'capped', reason: 'queue-limit' })).toBe(1);
    expect(sampleValue(s, 'titan_node_allocated', { node, resource: 'cpu' })).toBe(0);
    expect(sampleValue(s, 'titan_queue_allocated', { queue: 'team', resource: 'cpu' })).toBe(0);

    ws = await scrapeUntil('five ended attempts', () => workerSamples(w), (x) => sampleValue(x, 'titan_worker_attempts_ended_total', { outcome: 'succeeded' }) === 5);
    expect(sampleValue(ws, 'titan_worker_start_latency_seconds_count', { executor: 'shell' })).toBe(5);
    expect(sampleValue(ws, 'titan_worker_log_bytes_total', { stream: 'stdout' })).toBe(5 * 'hello\n'.length);
    expect(sampleValue(ws, 'titan_worker_running_jobs', { executor: 'shell' })).toBeUndefined();
    expect(sampleValue(ws, 'titan_worker_node_allocated', { node, resource: 'cpu' })).toBe(0);

    // The listener closes with the worker, though this client keeps its connection alive.
    const port = w.worker.metricsAddress?.port;
    await w.stop();
    worker = undefined;
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  }, 90_000);

  it('count a reclaim: the eviction, the job it made room for, and the evicted attempt', async () => {
    const { worker: w, master: m } = await startCluster();
    const { store } = suite;
    await store.createQueue(buildQueue('lender', { quotaCpu: '2' }));
    await store.createQueue(buildQueue('borrower', { quotaCpu: '0' }));
    // The borrower takes both idle cores with jobs that run until stopped.
    const long = "trap 'exit 143' TERM; sleep 60 & wait";
    const borrowed = [await submitJob(store, { shell: long, cpu: '1', queue: 'borrower' }), await submitJob(store, { shell: long, cpu: '1', queue: 'borrower' })];
    for (const job of borrowed) await waitForState(store, job.id, ['Running']);

    // The lender, below its quota, gets one core back by eviction.
    const owner = await submitJob(store, { shell: 'echo mine', cpu: '1', queue: 'lender' });
    await waitForState(store, owner.id, ['Succeeded'], 30_000);
    const s = await masterSamples(m);
    expect(sampleValue(s, 'titan_evictions_total', { reason: 'reclaim' })).toBe(1);
    expect(sampleValue(s, 'titan_evictions_total', { reason: 'preempt' })).toBeUndefined();
    expect(sampleValue(s, 'titan_preemptions_total', { queue: 'lender' })).toBe(1);
    const ws = await scrapeUntil('the evicted attempt', () => workerSamples(w), (x) => sampleValue(x, 'titan_worker_attempts_ended_total', { outcome: 'evicted' }) === 1);
    expect(sampleValue(ws, 'titan_worker_attempts_ended_total', { outcome: 'succeeded' })).toBe(1);
  }, 90_000);
});
