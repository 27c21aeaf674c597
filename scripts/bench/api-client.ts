#!/usr/bin/env node
/**
 * A child process of the bench (--api) that talks to the master's API, so
 * neither the bench (which hosts the simulated nodes) nor the master spends
 * its own event loop on the clients. Two roles, told by the parent over IPC:
 *
 * - load: N dashboard clients, each following GET /v1/jobs?limit=100,
 *   /v1/nodes and /v1/queues with blocking reads as the dashboard does
 *   (internal/dashboard/api.ts watch: answer, then ask again with
 *   ?index=<X-Titan-Index>&wait=30s), plus one follower of a job's log
 *   (GET /v1/jobs/:id/logs?follow=1 as text/event-stream, resuming with
 *   Last-Event-ID where the previous session stopped) timing each line from
 *   the simulated worker's flush (the time written in the line) to its
 *   arrival here.
 * - probe: one request at a time, round after round: GET /v1/jobs?limit=100,
 *   GET /v1/jobs?state=Failed&limit=100, and the raw etcd read they compare
 *   with (a range of the jobs prefix, limit 100), each timed.
 *
 * Protocol: the parent sends {type: 'start', config}; the child answers
 * {type: 'ready'} once warmed up, then {type: 'result'} after {type: 'stop'}
 * (a probe also waits until it has done its minimum rounds).
 */
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import { resolveEtcdConnection, type EtcdConnectionFlags } from '../../pkg/config/etcd-connection.js';
import { prefixEnd, Store } from '../../pkg/store/index.js';
import { checkSequence, parseBenchLogLines, type SequenceCheck } from './api-figures.js';
import { httpGet, httpStream } from './http-get.js';
import { SseParser, type ServerEvent } from '../../pkg/sse/parser.js';
import { sleep } from './wait.js';

/** What the dashboard asks for (internal/dashboard: jobs page of 100, the nodes and queues pages). */
export const DASHBOARD_PATHS = ['/v1/jobs?limit=100', '/v1/nodes', '/v1/queues'] as const;
/** The dashboard's BLOCKING_WAIT, and its pause after a failed read. */
const BLOCKING_WAIT = '30s';
const RETRY_MS = 2000;
export const PROBE_PAGE_PATH = '/v1/jobs?limit=100';
/** A dashboard filter no bench job matches (none fails): every answer scans the whole list, the worst case. */
export const PROBE_FILTERED_PATH = '/v1/jobs?state=Failed&limit=100';
export const PROBE_ETCD_LIMIT = 100;

export interface LoadConfig {
  role: 'load';
  url: string;
  token: string;
  clients: number;
  /** The job whose log is followed; none: no follower. */
  logJobId?: string;
  /** Where the previous session's follower stopped: this one resumes there (Last-Event-ID), as a client that reconnects does. */
  logLastEventId?: string;
}

export interface ProbeConfig {
  role: 'probe';
  url: string;
  token: string;
  minRounds: number;
  /** After the stop, rounds go on until minRounds, but no longer than this (an API that answers in seconds would keep the run for minutes). */
  maxOverrunMs: number;
  etcd: { flags: EtcdConnectionFlags; useEnv: boolean };
  prefix: string;
}

export type ClientConfig = LoadConfig | ProbeConfig;

export interface LoadResult {
  seconds: number;
  cpuSeconds: number;
  /** Answers received per dashboard path (each a blocking read that returned). */
  answers: Record<string, number>;
  errors: number;
  firstError?: string;
  /** Flush → arrival of each log line flushed after the stream opened, ms. */
  logStreamMs: number[];
  logEvents: number;
  logLines: SequenceCheck;
  logReconnects: number;
  logLastEventId?: string;
}

export interface ProbeResult {
  rounds: number;
  seconds: number;
  cpuSeconds: number;
  pageMs: number[];
  filteredMs: number[];
  etcdMs: number[];
  /** Jobs in the last answers (a check that the answers were what was asked). */
  pageJobs: number;
  filteredJobs: number;
  etcdKeys: number;
  errors: number;
  firstError?: string;
}

export type ParentMessage = { type: 'start'; config: ClientConfig } | { type: 'stop' };
export type ChildMessage = { type: 'ready' } | { type: 'result'; result: LoadResult | ProbeResult } | { type: 'failed'; message: string };

const send = (message: ChildMessage): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, () => resolve());
  });
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

let stopRequested: () => void = () => undefined;
const stopped = new Promise<void>((resolve) => (stopRequested = resolve));

async function runLoad(config: LoadConfig): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one listener per request in flight, by design
  const started = performance.now();
  const cpu0 = cpuNow();
  const answers: Record<string, number> = Object.fromEntries(DASHBOARD_PATHS.map((p) => [p, 0]));
  let errors = 0;
  let firstError: string | undefined;
  const fail = (what: string, err: unknown): void => {
    errors++;
    firstError ??= `${what}: ${message(err)}`;
  };
  let firstAnswers = 0;
  const loops = config.clients * DASHBOARD_PATHS.length;
  let followerOpen = config.logJobId === undefined;
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const checkReady = (): void => {
    if (firstAnswers >= loops && followerOpen) markReady();
  };

  const follow = async (path: string): Promise<void> => {
    let index: string | undefined;
    let counted = false;
    while (!abort.signal.aborted) {
      const sep = path.includes('?') ? '&' : '?';
      try {
        const url = `${config.url}${index === undefined ? path : `${path}${sep}index=${index}&wait=${BLOCKING_WAIT}`}`;
        const answer = await httpGet(url, { agent, token: config.token, signal: abort.signal });
        if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${answer.body.slice(0, 200)}`);
        JSON.parse(answer.body); // as the dashboard does with every answer
        answers[path]++;
        index = answer.index;
      } catch (err) {
        if (abort.signal.aborted) return;
        fail(path, err);
        await sleep(RETRY_MS);
      }
      if (!counted) {
        counted = true;
        firstAnswers++;
        checkReady();
      }
    }
  };

  const logStreamMs: number[] = [];
  const seqs: number[] = [];
  let logEvents = 0;
  let logReconnects = 0;
  let lastEventId = config.logLastEventId;
  const followLog = async (jobId: string): Promise<void> => {
    for (let attempt = 0; !abort.signal.aborted; attempt++) {
      if (attempt > 0) logReconnects++;
      const events: ServerEvent[] = [];
      const parser = new SseParser((event) => events.push(event));
      let openedAt = Infinity;
      const stream = httpStream(
        `${config.url}/v1/jobs/${encodeURIComponent(jobId)}/logs?follow=1`,
        { agent, token: config.token, signal: abort.signal, ...(lastEventId !== undefined ? { headers: { 'last-event-id': lastEventId } } : {}) },
        (text) => {
          const arrivedAt = performance.timeOrigin + performance.now();
          parser.push(text);
          for (const event of events.splice(0)) {
            logEvents++;
            if (event.id !== undefined) lastEventId = event.id;
            for (const line of parseBenchLogLines(event.data)) {
              seqs.push(line.seq);
              // Lines flushed before the stream opened come from the backlog: not a live delivery.
              if (line.flushedAtMs >= openedAt) logStreamMs.push(arrivedAt - line.flushedAtMs);
            }
          }
        },
      );
      try {
        const status = await stream.opened;
        openedAt = performance.timeOrigin + performance.now();
        if (status === 404) {
          fail('log follower', new Error('HTTP 404 (no log route, or no such job)'));
          followerOpen = true;
          checkReady();
          return;
        }
        if (status !== 200) throw new Error(`HTTP ${status}`);
        followerOpen = true;
        checkReady();
        await stream.closed;
      } catch (err) {
        if (abort.signal.aborted) return;
        fail('log follower', err);
        followerOpen = true; // counted as tried: the session goes on without it
        checkReady();
      }
      if (!abort.signal.aborted) await sleep(RETRY_MS);
    }
  };

  const running = [
    ...Array.from({ length: config.clients }, () => DASHBOARD_PATHS.map((p) => follow(p))).flat(),
    ...(config.logJobId !== undefined ? [followLog(config.logJobId)] : []),
  ];
  checkReady();
  await ready;
  await send({ type: 'ready' });
  await stopped;
  abort.abort();
  await Promise.allSettled(running);
  agent.destroy();
  return {
    seconds: (performance.now() - started) / 1000,
    cpuSeconds: cpuNow() - cpu0,
    answers,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    logStreamMs,
    logEvents,
    logLines: checkSequence(seqs),
    logReconnects,
    ...(lastEventId !== undefined ? { logLastEventId: lastEventId } : {}),
  };
}

async function runProbe(config: ProbeConfig): Promise<ProbeResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const connection = config.etcd.useEnv ? resolveEtcdConnection(config.etcd.flags, process.env) : resolveEtcdConnection(config.etcd.flags, {});
  const store = new Store({ ...connection, prefix: config.prefix, callTimeoutMs: 30_000 });
  const jobsPrefix = store.keys.collection('jobs');
  let errors = 0;
  let firstError: string | undefined;
  const result = { pageMs: [] as number[], filteredMs: [] as number[], etcdMs: [] as number[], pageJobs: 0, filteredJobs: 0, etcdKeys: 0 };
  const api = async (path: string): Promise<{ ms: number; jobs: number }> => {
    const t0 = performance.now();
    const answer = await httpGet(`${config.url}${path}`, { agent, token: config.token });
    const ms = performance.now() - t0;
    if (answer.status !== 200) throw new Error(`${path}: HTTP ${answer.status}: ${answer.body.slice(0, 200)}`);
    return { ms, jobs: (JSON.parse(answer.body) as { jobs: unknown[] }).jobs.length };
  };
  const etcd = async (): Promise<{ ms: number; keys: number }> => {
    const t0 = performance.now();
    const res = await store.client.kv.range({ key: Buffer.from(jobsPrefix), range_end: prefixEnd(jobsPrefix), limit: PROBE_ETCD_LIMIT });
    return { ms: performance.now() - t0, keys: res.kvs.length };
  };
  try {
    // Warm up each path once (connections, JIT), uncounted.
    await api(PROBE_PAGE_PATH);
    await api(PROBE_FILTERED_PATH);
    await etcd();
    await send({ type: 'ready' });
    let stopAt: number | undefined;
    void stopped.then(() => (stopAt = performance.now()));
    const started = performance.now();
    const cpu0 = cpuNow();
    let rounds = 0;
    const going = (): boolean => stopAt === undefined || (rounds < config.minRounds && performance.now() - stopAt < config.maxOverrunMs);
    for (; going(); rounds++) {
      try {
        // Interleaved, so whatever slows the machine down at a moment touches all three alike.
        const page = await api(PROBE_PAGE_PATH);
        result.pageMs.push(page.ms);
        result.pageJobs = page.jobs;
        const filtered = await api(PROBE_FILTERED_PATH);
        result.filteredMs.push(filtered.ms);
        result.filteredJobs = filtered.jobs;
        const range = await etcd();
        result.etcdMs.push(range.ms);
        result.etcdKeys = range.keys;
      } catch (err) {
        errors++;
        firstError ??= message(err);
        if (errors > 20) throw new Error(`probe: ${errors} failed rounds, the first: ${firstError}`);
      }
    }
    return { rounds, seconds: (performance.now() - started) / 1000, cpuSeconds: cpuNow() - cpu0, ...result, errors, ...(firstError !== undefined ? { firstError } : {}) };
  } finally {
    agent.destroy();
    store.close();
  }
}

process.on('message', (msg: ParentMessage) => {
  if (msg.type === 'stop') {
    stopRequested();
    return;
  }
  const run = msg.config.role === 'load' ? runLoad(msg.config) : runProbe(msg.config);
  void run
    .then(
      (result) => send({ type: 'result', result }),
      (err: unknown) => send({ type: 'failed', message: message(err) }),
    )
    .then(() => process.disconnect?.());
});
// The bench went away: so does this process.
process.on('disconnect', () => process.exit(0));
