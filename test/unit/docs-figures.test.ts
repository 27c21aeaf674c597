import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COALESCE_MS } from '../../internal/api/blocking.js';
import { SHARED_FRESH_MS } from '../../internal/api/cache.js';
import { DEFAULT_SUBMIT_BATCH } from '../../internal/cli/bulk-submit.js';
import { resolveMasterConfig } from '../../internal/master/config.js';
import { MAX_PASS_WINDOW_MS, PASS_COST_FACTOR, PASS_WINDOW_MS } from '../../internal/master/pass-loop.js';
import { FOLD_WINDOW_MS } from '../../internal/master/report-folder.js';
import { PRESSURE_SWEEP_MS } from '../../internal/master/retention.js';
import { DEFAULT_STORAGE_CHECK_MS, STORAGE_HIGH_WATER, STORAGE_LOW_WATER } from '../../internal/master/storage-watch.js';
import { EVICTION_HOLD_MS } from '../../internal/scheduler/eviction-reservations.js';
import { fgdWeights } from '../../internal/scheduler/fgd-weights.js';
import { MAX_REASON_UPDATES } from '../../internal/scheduler/pass.js';
import { REASON_GRACE_MS, REASON_REFRESH_MS } from '../../internal/scheduler/reason-timing.js';
import { feasibleNodesToScore } from '../../internal/scheduler/pass-placer.js';
import { MAX_SYNTH_NODES } from '../../internal/simulate/node-synth.js';
import { DEFAULT_PIDS_LIMIT } from '../../internal/worker/container-box.js';
import {
  DEFAULT_JOB_LOG_BUDGET_BYTES,
  DEFAULT_LOG_CHUNK_BYTES,
  DEFAULT_LOG_FLUSH_MS,
  DEFAULT_MAX_LOG_BYTES,
  DEFAULT_PARALLEL_STARTS,
  DEFAULT_STOP_GRACE_MS,
  DEFAULT_TTL_SECONDS,
} from '../../internal/worker/config.js';
import { DEFAULT_PULL_TIMEOUT_MS, DOCKER_CALL_TIMEOUT_MS } from '../../internal/worker/docker-execution.js';
import { COMPACT_AFTER_LINES } from '../../internal/worker/run-journal.js';
import { MAX_GANG_SIZE } from '../../pkg/model/gang.js';
import { DEFAULT_PORT_RANGE } from '../../pkg/model/node.js';
import { JOB_ID_PATTERN } from '../../pkg/model/id.js';
import { parseDuration, parseMemory } from '../../pkg/model/parse.js';
import { DEFAULT_QUEUE_WEIGHT } from '../../pkg/model/queue.js';
import { DEFAULT_RETRY_POLICY } from '../../pkg/model/retry.js';
import { MAX_JOB_SPEC_BYTES } from '../../pkg/model/spec.js';
import { LAYOUT_VERSION } from '../../pkg/store/layout.js';
import { MAX_PLACEMENTS_PER_TXN, MAX_TXN_OPS } from '../../pkg/store/txn.js';

const root = path.resolve(import.meta.dirname, '../..');
/** A doc's text with its line breaks and indentation collapsed to single spaces. */
const prose = (file: string): string => fs.readFileSync(path.join(root, file), 'utf8').replace(/\s+/g, ' ');
const master = resolveMasterConfig({}, {});

/**
 * What a doc says of a flag's value: the parenthesis after its first mention,
 * `--flag` (…; default X) or `--flag` (X, …), gives X.
 */
function stated(text: string, flag: string): string {
  const mention = text.search(new RegExp(`\`${flag}[\` ]`));
  if (mention < 0) throw new Error(`${flag} is not mentioned`);
  const m = /^`[^`]*`(?: and `[^`]*`)? \(((?:[^()]|\([^()]*\))*)\)/.exec(text.slice(mention));
  if (!m) throw new Error(`no (…) after the first ${flag}`);
  const value = /default:? (.+?)(?:;|, |$)/.exec(m[1])?.[1] ?? m[1].split(/; |, /)[0];
  return value.trim();
}
/** 8 MiB, 2 GiB → bytes. */
const bytes = (text: string): number => parseMemory(text.replace(/ ?([KMGT])iB$/, '$1i'));
/** 10,000 → 10000. */
const count = (text: string): number => Number(text.replace(/,/g, ''));

/** The collections internal/master/master.ts follows with informers of its own (`follow(keys.collection('nodes'), ...)`). */
function masterInformers(): string[] {
  const source = fs.readFileSync(path.join(root, 'internal/master/master.ts'), 'utf8');
  return [...source.matchAll(/follow(?:<\w+>)?\(\s*keys\.collection\('(\w+)'\)/g)].map((m) => m[1]);
}
const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven'];

describe('figures the docs state', () => {
  it('docs/architecture.md gives the code defaults of the data path', () => {
    const text = prose('docs/architecture.md');
    expect(text).toContain(`(${MAX_PLACEMENTS_PER_TXN} per transaction, ${master.commitConcurrency} in flight)`);
    expect(master.commitBatch).toBe(MAX_PLACEMENTS_PER_TXN);
    expect(text).toContain(`in chunks (${DEFAULT_LOG_FLUSH_MS} ms or ${DEFAULT_LOG_CHUNK_BYTES / 1024} KiB)`);
    expect(text).toContain(`\`--parallel-starts\` (${DEFAULT_PARALLEL_STARTS})`);
    expect(text).toContain(`waits until ${FOLD_WINDOW_MS} ms after the last batch went (\`FOLD_WINDOW_MS\`)`);
    expect(text).toContain(`within ${PASS_WINDOW_MS} ms of the last one's start wait for those ${PASS_WINDOW_MS} ms (\`PASS_WINDOW_MS\``);
    expect(text).toContain(`or for ${PASS_COST_FACTOR} times as long as the last pass took (\`PASS_COST_FACTOR\``);
    expect(text).toContain(`up to ${MAX_PASS_WINDOW_MS} ms (\`MAX_PASS_WINDOW_MS\`)`);
    expect(text).toContain(`once it has grown past ${COMPACT_AFTER_LINES.toLocaleString('en-US')} lines`);
    expect(text).toContain(`at most ${MAX_REASON_UPDATES} per pass`);
    expect(text).toContain(`rewritten at most every ${REASON_REFRESH_MS / 1000} s`);
    expect(text).toContain(`once it has waited ${REASON_GRACE_MS / 1000} s (\`REASON_GRACE_MS\``);
    expect(text).toContain(`(up to ${master.nodeLostRetries} times by default)`);
    expect(text).toContain(`at most ${MAX_TXN_OPS} operations (\`MAX_TXN_OPS\``);
    expect(parseDuration(stated(text, '--retain'))).toBe(master.retainMs);
    expect(count(stated(text, '--retain-jobs'))).toBe(master.retainJobs);
    expect(parseDuration(stated(text, '--retention-interval'))).toBe(master.retentionIntervalMs);
    expect(parseDuration(stated(text, '--compact-history'))).toBe(master.compactHistoryMs);
  });

  it('docs/architecture.md counts the informers the master starts', () => {
    const informers = masterInformers();
    expect(informers).toEqual(expect.arrayContaining(['nodes', 'assign', 'jobs', 'queues']));
    expect(prose('docs/architecture.md')).toContain(`built by ${WORDS[informers.length]} list-then-watch informers`);
  });

  it('docs/architecture.md names only files that exist', () => {
    const text = fs.readFileSync(path.join(root, 'docs/architecture.md'), 'utf8');
    const files = [...text.matchAll(/(?<![\w/.-])((?:cmd|internal|pkg|scripts|test|docs)\/[\w./-]+\.(?:ts|md|sh))/g)].map((m) => m[1]);
    expect(files.length).toBeGreaterThan(10);
    expect(files.filter((f) => !fs.existsSync(path.join(root, f)))).toEqual([]);
  });

  it('docs/etcd-layout.md gives the batch sizes, TTLs and thresholds of the code', () => {
    const text = prose('docs/etcd-layout.md');
    expect(text).toContain(`up to ${DEFAULT_SUBMIT_BATCH} jobs per transaction`);
    expect(text).toContain(`up to ${MAX_PLACEMENTS_PER_TXN} placements per transaction`);
    expect(text).toContain(`(${DEFAULT_LOG_FLUSH_MS} ms or ${DEFAULT_LOG_CHUNK_BYTES / 1024} KiB per chunk`);
    expect(text).toContain(`(default TTL ${DEFAULT_TTL_SECONDS} s after the worker dies)`);
    expect(text).toContain(`(default TTL ${master.leaseTtlSeconds} s)`);
    expect(text).toContain(`past ${STORAGE_HIGH_WATER * 100}% of \`--etcd-quota-bytes\``);
    expect(text).toContain(`below ${STORAGE_LOW_WATER * 100}% of the quota`);
    expect(text).toContain(`(\`pkg/store/layout.ts\`, version ${LAYOUT_VERSION})`);
    expect(text).toContain(`Job ids are ${/\{(\d+)\}/.exec(JOB_ID_PATTERN.source)?.[1]} characters`);
  });

  it('docs/gangs.md gives the gang size limit', () => {
    const text = prose('docs/gangs.md');
    expect(MAX_GANG_SIZE).toBe(MAX_PLACEMENTS_PER_TXN);
    expect(text).toContain(`\`1 ≤ --min-available ≤ --replicas ≤ ${MAX_GANG_SIZE}\`. ${MAX_GANG_SIZE} is the number of placements`);
    expect(text).toContain(`within etcd's default ${MAX_TXN_OPS} ops`);
    expect(text).toContain(`default \`${DEFAULT_PORT_RANGE.first}-${DEFAULT_PORT_RANGE.last}\``);
    expect(prose('README.md')).toContain(`default \`${DEFAULT_PORT_RANGE.first}-${DEFAULT_PORT_RANGE.last}\``);
  });

  it("docs/queues.md gives a queue's default weight", () => {
    expect(prose('docs/queues.md')).toContain(`weights (default ${DEFAULT_QUEUE_WEIGHT})`);
  });

  it("README.md gives the daemons' defaults", () => {
    const text = prose('README.md');
    expect(text).toContain(`retried up to ${DEFAULT_RETRY_POLICY.nodeLostRetries} times whatever \`--retries\` says`);
    expect(text).toContain(`at most ${MAX_JOB_SPEC_BYTES / 1024} KiB together (\`MAX_JOB_SPEC_BYTES\`)`);
    // Worker
    expect(Number(stated(text, '--ttl'))).toBe(DEFAULT_TTL_SECONDS);
    expect(bytes(stated(text, '--max-log'))).toBe(DEFAULT_MAX_LOG_BYTES);
    expect(bytes(stated(text, '--job-log-budget'))).toBe(DEFAULT_JOB_LOG_BUDGET_BYTES);
    expect(parseDuration(stated(text, '--stop-grace'))).toBe(DEFAULT_STOP_GRACE_MS);
    expect(Number(stated(text, '--node-lost-retries'))).toBe(DEFAULT_RETRY_POLICY.nodeLostRetries);
    expect(Number(stated(text, '--parallel-starts'))).toBe(DEFAULT_PARALLEL_STARTS);
    expect(parseDuration(stated(text, '--pull-timeout'))).toBe(DEFAULT_PULL_TIMEOUT_MS);
    expect(Number(stated(text, '--pids-limit'))).toBe(DEFAULT_PIDS_LIMIT);
    // Master
    expect(stated(text, '--policy')).toBe(master.policy);
    expect(Number(stated(text, '--lease-ttl'))).toBe(master.leaseTtlSeconds);
    expect(master.nodeLostRetries).toBe(DEFAULT_RETRY_POLICY.nodeLostRetries);
    expect(parseDuration(stated(text, '--retain'))).toBe(master.retainMs);
    expect(count(stated(text, '--retain-jobs'))).toBe(master.retainJobs);
    expect(parseDuration(stated(text, '--retention-interval'))).toBe(master.retentionIntervalMs);
    expect(parseDuration(stated(text, '--evict-grace'))).toBe(master.evictGraceMs);
    expect(parseDuration(stated(text, '--min-runtime'))).toBe(master.minRuntimeMs);
    expect(parseDuration(stated(text, '--start-deadline'))).toBe(master.startDeadlineMs);
    expect(bytes(stated(text, '--etcd-quota-bytes'))).toBe(master.etcdQuotaBytes);
    expect(text).toContain(`past ${STORAGE_HIGH_WATER * 100}% of it new submits are refused`);
    expect(parseDuration(stated(text, '--compact-history'))).toBe(master.compactHistoryMs);
    expect(Number(stated(text, '--commit-batch'))).toBe(master.commitBatch);
    expect(Number(stated(text, '--commit-concurrency'))).toBe(master.commitConcurrency);
  });

  it('docs/reliability.md and docs/security.md give the deadlines and bounds of the code', () => {
    const reliability = prose('docs/reliability.md');
    expect(parseDuration(stated(reliability, '--pull-timeout'))).toBe(DEFAULT_PULL_TIMEOUT_MS);
    expect(parseDuration(stated(reliability, '--start-deadline'))).toBe(master.startDeadlineMs);
    expect(reliability).toContain(`the TTL (default ${DEFAULT_TTL_SECONDS} s)`);
    const security = prose('docs/security.md');
    expect(security).toContain(`every ${DEFAULT_STORAGE_CHECK_MS / 1000} s. Past ${STORAGE_HIGH_WATER * 100}%`);
    expect(security).toContain(`swept every ${PRESSURE_SWEEP_MS / 1000} s`);
    expect(security).toContain(`takes over ${DOCKER_CALL_TIMEOUT_MS / 1000} s is aborted`);
    expect(security).toContain(`\`PidsLimit\`, default ${DEFAULT_PIDS_LIMIT}`);
  });

  it('docs/scheduling.md gives the default sample of the node scan', () => {
    const text = prose('docs/scheduling.md');
    const rule = (n: number): number => (n <= 100 ? n : Math.max(100, Math.floor((n * Math.max(5, 50 - n / 125)) / 100)));
    expect(text).toContain('every node up to 100 nodes, then max(5, 50 − nodes ÷ 125) percent of them, never fewer than 100');
    for (const n of [50, 101, 1000, 1213, 5000, 5625, 20_000]) expect(feasibleNodesToScore(n)).toBe(rule(n));
    expect(text).toContain(`(${feasibleNodesToScore(1213)} of openb's 1,213 nodes, ${feasibleNodesToScore(5000)} of 5,000, 5% from 5,625 nodes on)`);
    expect(feasibleNodesToScore(5625)).toBe(Math.floor(5625 * 0.05));
    expect(text).toContain(`node list of \`--count\` nodes (1 to ${MAX_SYNTH_NODES.toLocaleString('en-US')})`);
  });

  it("docs/scheduling.md gives fgd's weights and where they fade", () => {
    const text = prose('docs/scheduling.md');
    const low = fgdWeights(0);
    expect(text).toContain(`weighted ${low.stranding} against fragmentation growth while CPU-only jobs ask for at most 25% of the CPU submitted`);
    expect(text).toContain('fading linearly to 0 at 40%');
    expect(fgdWeights(0.25).stranding).toBe(low.stranding);
    expect(fgdWeights(0.4).stranding).toBe(0);
    expect(text).toContain(`${low.cpuJobFreeGpus} per free GPU against fragmentation growth, whatever the mix`);
    expect(fgdWeights(1).cpuJobFreeGpus).toBe(low.cpuJobFreeGpus);
    expect(text).toContain(`weight ${low.gpuPacking} while CPU-only jobs ask for at most 40% of the CPU submitted, fading linearly to ${fgdWeights(1).gpuPacking} (a tie-break) at 55%`);
    expect(fgdWeights(0.4).gpuPacking).toBe(low.gpuPacking);
    expect(fgdWeights(0.55).gpuPacking).toBe(fgdWeights(1).gpuPacking);
    expect(text).toContain(`it asks, weight ${fgdWeights(1).cpuRichNodes} times how far the node's CPU per GPU`);
    expect(text).toContain('The weight is 0 while CPU-only jobs ask for at most 40% of the CPU submitted, rising linearly to 1 at 55%, and 0 while that share has been measured on fewer than 200 submissions');
    expect(fgdWeights(0.4).cpuRichNodes).toBe(0);
    expect(fgdWeights(0.55, 200).cpuRichNodes).toBe(1);
    expect(fgdWeights(1, 199).cpuRichNodes).toBe(0);
  });

  it('docs/queues.md gives how long a node is held for the job evictions were for', () => {
    expect(prose('docs/queues.md')).toContain(`the eviction grace plus ${EVICTION_HOLD_MS / 1000} s (\`EVICTION_HOLD_MS\`)`);
  });

  it("docs/benchmarks.md gives the API's answer-sharing intervals", () => {
    const text = prose('docs/benchmarks.md');
    expect(text).toContain(`\`SHARED_FRESH_MS\` (${SHARED_FRESH_MS / 1000} s)`);
    expect(text).toContain(`\`COALESCE_MS\` (${COALESCE_MS} ms)`);
  });
});
