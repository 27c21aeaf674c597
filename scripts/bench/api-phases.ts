import http from 'node:http';
import os from 'node:os';
import type { Lease } from 'etcd3';
import { submitJobs } from '../../internal/cli/bulk-submit.js';
import { planToken } from '../../internal/cli/tokens.js';
import type { EtcdConnectionFlags } from '../../pkg/config/etcd-connection.js';
import { prefixEnd, type Store } from '../../pkg/store/index.js';
import { ApiChild } from './api-child.js';
import type { LoadResult, ProbeResult } from './api-client.js';
import { LogWriter } from './log-writer.js';
import { summarize } from './percentiles.js';
import { countJobs } from './etcd-retention.js';
import { BurstTracker, dispatchPhase, drainPhase, jobFactory, placementPhase, type BenchContext } from './phases.js';
import type { ApiDetails, ApiFigures, ApiProbeDetails, BenchResult } from './report.js';
import { httpGet } from './http-get.js';
import { sleep } from './wait.js';

/**
 * --api: the master serves its HTTP API (--listen) for the whole run, and
 * the load on it runs in child processes (api-client.ts). Both placement
 * bursts start the same way: the bench holds the leader key while the
 * master starts, syncs and opens its API, then hands leadership over; the
 * second burst has the dashboard clients and the log follower on the API
 * from before the handover. See docs/benchmarks.md.
 */

/** Probe rounds with no client on the API, and at least with them (that probe runs while the nodes acknowledge the first burst). */
export const PROBE_ROUNDS = 500;
export const LOADED_PROBE_MIN_ROUNDS = 100;
/** How long the loaded probe may go on after the acknowledgement to reach its minimum rounds. */
export const LOADED_PROBE_MAX_OVERRUN_MS = 30_000;

/** The bench holding the leader key, so a master that starts waits as a follower until the bench lets go. */
class LeaderHold {
  private lease: Lease | undefined;
  private term: string | undefined;

  constructor(private readonly store: Store) {}

  async take(timeoutMs = 30_000): Promise<void> {
    if (this.term !== undefined) return;
    const lease = this.store.client.lease(10);
    this.lease = lease;
    const leaseId = await this.store.call(() => lease.grant());
    const record = { id: 'bench-leadership-hold', hostname: os.hostname(), since: Date.now() };
    for (const deadline = performance.now() + timeoutMs; ; ) {
      const { won, term } = await this.store.campaign(record, leaseId);
      if (won) {
        this.term = term;
        return;
      }
      if (performance.now() > deadline) throw new Error(`could not take the leader key within ${timeoutMs / 1000} s (term ${term} holds it)`);
      await sleep(100);
    }
  }

  async release(): Promise<void> {
    const { term, lease } = this;
    this.term = undefined;
    this.lease = undefined;
    if (term !== undefined) await this.store.resign(term);
    await lease?.revoke().catch(() => lease.release());
  }
}

export interface ApiSetup {
  /** http://127.0.0.1:<port> the master listens on. */
  url: string;
  /** dist/scripts/bench/api-client.js */
  clientScript: string;
  /** How the probe process reaches etcd for its reference reads: the bench's own connection flags. */
  etcd: { flags: EtcdConnectionFlags; useEnv: boolean };
}

/** The state of --api through the run. */
export class ApiBench {
  private token = '';
  private readonly leader: LeaderHold;
  private logWriter: LogWriter | undefined;
  private logJobId: string | undefined;
  private logLastEventId: string | undefined;
  private readonly logStreamMs: number[] = [];
  private readonly children = new Set<ApiChild<unknown>>();

  constructor(
    private readonly ctx: BenchContext,
    private readonly setup: ApiSetup,
  ) {
    this.leader = new LeaderHold(ctx.store);
    ctx.result.api = emptyApiFigures(ctx.options.apiClients);
    ctx.result.details.api = { sessions: [] };
  }

  private get figures(): ApiFigures {
    return this.ctx.result.api ?? (this.ctx.result.api = emptyApiFigures(this.ctx.options.apiClients));
  }

  private get details(): ApiDetails {
    return this.ctx.result.details.api ?? (this.ctx.result.details.api = { sessions: [] });
  }

  /** A reader token for the clients, as `titan token create --role reader` makes it; before the master starts, so its cache has it. */
  async createToken(): Promise<void> {
    const { token, secret } = planToken({ role: 'reader', name: 'titan-bench' });
    await this.ctx.store.createToken(token);
    this.token = secret;
  }

  /** Takes the leader key, starts the master and waits until its API answers: a synced follower waiting for leadership. */
  async startFollowingMaster(): Promise<void> {
    const { master } = this.ctx;
    await this.leader.take();
    master.start();
    const agent = new http.Agent({ keepAlive: false });
    try {
      for (const deadline = performance.now() + 60_000; ; ) {
        const failure = master.failure();
        if (failure) throw new Error(failure);
        const answer = await httpGet(`${this.setup.url}/healthz`, { agent }).catch(() => undefined);
        if (answer?.status === 200) return;
        if (performance.now() > deadline) throw new Error(`the master's API did not answer on ${this.setup.url} within 60 s`);
        await sleep(100);
      }
    } finally {
      agent.destroy();
    }
  }

  /** For placementPhase: the master that waits becomes the leader. */
  readonly handover = (): Promise<void> => this.leader.release();

  /** The first burst (no client on the API), started the way the second one will be. */
  async placeFirstBurst(burst: BurstTracker): Promise<void> {
    try {
      await this.startFollowingMaster();
      await placementPhase(this.ctx, burst, this.handover);
    } finally {
      await this.leader.release(); // a failure before the handover must not leave the master waiting
    }
  }

  /** The job whose log is followed: placed now (the master leads), Running on a simulated node, a chunk per flush interval. */
  async startLogWriter(): Promise<void> {
    const { ctx } = this;
    const writer = new LogWriter(ctx.store, ctx.nodes, (m) => ctx.progress(`warning: ${m}`));
    const job = jobFactory(ctx.options)('bench-log-follow');
    await writer.start(job, () => ctx.master.failure());
    this.logWriter = writer;
    this.logJobId = job.id;
    ctx.progress(`api: job ${job.id} prints a line every ${writer.intervalMs} ms on a simulated node`);
  }

  /** GET /v1/jobs and the etcd reference, one call at a time, with no client on the API. */
  async idleProbe(): Promise<void> {
    this.details.jobsAtProbe = (await countJobs(this.ctx.store)).count;
    this.ctx.progress(`api: probing GET /v1/jobs with ${this.details.jobsAtProbe} jobs in etcd, ${PROBE_ROUNDS} rounds, no client on the API`);
    const probe = await this.probe(PROBE_ROUNDS);
    this.details.probe = probe;
    this.figures.jobsPageP99Ms = probe.pageMs?.p99 ?? null;
    this.figures.jobsFilteredP99Ms = probe.filteredMs?.p99 ?? null;
    this.figures.etcdRangeP99Ms = probe.etcdRangeMs?.p99 ?? null;
    this.figures.jobsPageEtcdRatio = probe.pageMs && probe.etcdRangeMs ? probe.pageMs.p99 / probe.etcdRangeMs.p99 : null;
    this.ctx.progress(`api: ${describeProbe(probe)}`);
  }

  /** The same probe with the clients on, for as long as `during` runs (the acknowledgement of the first burst: every job changes twice). */
  async loadedProbe(during: () => Promise<void>): Promise<void> {
    await this.withLoad('the acknowledgement of the first burst (probe)', async () => {
      const probe = await this.probe(LOADED_PROBE_MIN_ROUNDS, during, LOADED_PROBE_MAX_OVERRUN_MS);
      this.details.probeLoaded = probe;
      this.figures.jobsPageP99MsLoaded = probe.pageMs?.p99 ?? null;
      this.figures.jobsFilteredP99MsLoaded = probe.filteredMs?.p99 ?? null;
      this.figures.etcdRangeP99MsLoaded = probe.etcdRangeMs?.p99 ?? null;
      this.ctx.progress(`api: with the clients: ${describeProbe(probe)}`);
    });
  }

  /**
   * The second burst, placed with the clients on: the master restarts as a
   * follower (the same start as the first burst's), the burst is submitted,
   * the clients start, then the leadership is handed over.
   */
  async loadedBurst(): Promise<void> {
    const { ctx } = this;
    ctx.progress('api: restarting the master as a follower for the second burst');
    await ctx.master.stopForRestart();
    try {
      await this.loadedBurstFromFollower();
    } finally {
      await this.leader.release();
    }
  }

  private async loadedBurstFromFollower(): Promise<void> {
    const { ctx } = this;
    const { options, store, nodes } = ctx;
    await this.startFollowingMaster();
    const makeJob = jobFactory(options);
    const jobs = Array.from({ length: options.jobs }, (_, i) => makeJob(`bench-api-${i}`));
    const submitted = await submitJobs(store, jobs);
    ctx.progress(`api: ${submitted.submitted} more jobs submitted with the master following`);
    await this.waitForApiIndex(await newestJobRevision(store));
    const burst = new BurstTracker(nodes, new Set(submitted.ids), options.complete ? 'Succeeded' : 'Running');
    const scratch = scratchContext(ctx);
    try {
      await this.withLoad('the second burst', async () => {
        await placementPhase(scratch, burst, this.handover);
        await drainPhase(scratch, burst);
      });
    } finally {
      burst.dispose();
      this.figures.placementsPerSecLoaded = scratch.result.placementsPerSec;
      this.details.placementLoaded = scratch.result.details;
    }
  }

  /** The dispatch phase again, with the clients on. */
  async loadedDispatch(): Promise<void> {
    const scratch = scratchContext(this.ctx);
    try {
      await this.withLoad('the second dispatch phase', () => dispatchPhase(scratch));
    } finally {
      this.figures.dispatchP50MsLoaded = scratch.result.dispatchP50Ms;
      this.figures.dispatchP99MsLoaded = scratch.result.dispatchP99Ms;
      this.details.dispatchLoaded = scratch.result.details;
    }
  }

  /** Ends the followed job and sums up its log figures. */
  async finish(): Promise<void> {
    const writer = this.logWriter;
    this.logWriter = undefined;
    if (writer) {
      await writer.stop();
      this.details.logChunksWritten = writer.written;
      const put = summarize(writer.putMs);
      if (put) this.details.logPutMs = put;
    }
    const stream = summarize(this.logStreamMs);
    if (stream) {
      this.details.logStreamMs = stream;
      this.figures.logStreamP50Ms = stream.p50;
      this.figures.logStreamP99Ms = stream.p99;
    }
  }

  /** The run is ending: kills whatever child is left and stops the log writer (without its last report). */
  abort(): void {
    for (const child of this.children) child.kill();
    this.logWriter?.halt();
  }

  private async withLoad(name: string, body: () => Promise<void>): Promise<void> {
    const { ctx } = this;
    const followers = this.logJobId === undefined ? 0 : 1;
    ctx.progress(`api: ${ctx.options.apiClients} dashboard clients${followers ? ' and a log follower' : ''} start, for ${name}`);
    const load = this.track(
      ApiChild.load(this.setup.clientScript, {
        url: this.setup.url,
        token: this.token,
        clients: ctx.options.apiClients,
        ...(this.logJobId !== undefined ? { logJobId: this.logJobId } : {}),
        ...(this.logLastEventId !== undefined ? { logLastEventId: this.logLastEventId } : {}),
      }),
    );
    let result: LoadResult | undefined;
    try {
      await load.ready();
      await body();
    } finally {
      result = await load.stop().finally(() => this.untrack(load));
      this.figures.logFollowers = Math.max(this.figures.logFollowers, followers);
      this.logStreamMs.push(...result.logStreamMs);
      this.logLastEventId = result.logLastEventId ?? this.logLastEventId;
      this.details.sessions.push({
        name,
        seconds: result.seconds,
        cpuSeconds: result.cpuSeconds,
        answers: result.answers,
        errors: result.errors,
        ...(result.firstError !== undefined ? { firstError: result.firstError } : {}),
        logEvents: result.logEvents,
        logLinesMissing: result.logLines.missing,
        logLinesRepeated: result.logLines.repeated,
        logReconnects: result.logReconnects,
      });
      const answers = Object.values(result.answers).reduce((a, b) => a + b, 0);
      ctx.progress(`api: clients stopped: ${answers} answers, ${result.errors} errors, ${result.logStreamMs.length} log lines timed${result.firstError ? `; first error: ${result.firstError}` : ''}`);
    }
  }

  private async probe(minRounds: number, during?: () => Promise<void>, maxOverrunMs = Infinity): Promise<ApiProbeDetails> {
    const { url } = this.setup;
    const child = this.track(ApiChild.probe(this.setup.clientScript, { url, token: this.token, minRounds, maxOverrunMs, etcd: this.setup.etcd, prefix: this.ctx.store.keys.root }));
    let raw: ProbeResult;
    try {
      await child.ready();
      try {
        await during?.();
      } finally {
        raw = await child.stop(600_000);
      }
    } finally {
      this.untrack(child);
    }
    if (raw.errors > 0) this.ctx.progress(`api: ${raw.errors} probe calls failed, the first: ${raw.firstError}`);
    return probeDetails(raw);
  }

  /** Waits until the API's cache (in the master process, beside its scheduler's) has seen the revision. */
  private async waitForApiIndex(revision: string): Promise<void> {
    const agent = new http.Agent({ keepAlive: true });
    try {
      for (const deadline = performance.now() + 30_000; performance.now() < deadline; await sleep(50)) {
        const answer = await httpGet(`${this.setup.url}/v1/jobs?limit=1`, { agent, token: this.token });
        if (answer.index !== undefined && BigInt(answer.index) >= BigInt(revision)) return;
      }
      throw new Error(`the master's API did not reach revision ${revision} within 30 s`);
    } finally {
      agent.destroy();
    }
  }

  private track<R>(child: ApiChild<R>): ApiChild<R> {
    this.children.add(child as ApiChild<unknown>);
    return child;
  }

  private untrack(child: ApiChild<unknown>): void {
    this.children.delete(child);
  }
}

export function emptyApiFigures(clients: number): ApiFigures {
  return {
    clients,
    logFollowers: 0,
    placementsPerSecLoaded: null,
    placementRatio: null,
    dispatchP50MsLoaded: null,
    dispatchP99MsLoaded: null,
    dispatchP50Ratio: null,
    dispatchP99Ratio: null,
    jobsPageP99Ms: null,
    jobsPageP99MsLoaded: null,
    jobsFilteredP99Ms: null,
    jobsFilteredP99MsLoaded: null,
    etcdRangeP99Ms: null,
    etcdRangeP99MsLoaded: null,
    jobsPageEtcdRatio: null,
    logStreamP50Ms: null,
    logStreamP99Ms: null,
  };
}

/** The mod revision of the newest job write: the jobs index the API's cache must reach to have seen every job (etcd's own revision moves on with logs and reports). */
async function newestJobRevision(store: Store): Promise<string> {
  const prefix = store.keys.collection('jobs');
  const res = await store.call(() =>
    store.client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), sort_target: 'Mod', sort_order: 'Descend', limit: 1, keys_only: true }),
  );
  return res.kvs[0]?.mod_revision ?? '0';
}

/** The phases write their figures into ctx.result: a copy with empty figures keeps the loaded run's apart. */
function scratchContext(ctx: BenchContext): BenchContext {
  const result: BenchResult = { ...ctx.result, placementsPerSec: null, dispatchP50Ms: null, dispatchP99Ms: null, details: {}, errors: [] };
  return { ...ctx, result };
}

function probeDetails(raw: ProbeResult): ApiProbeDetails {
  const page = summarize(raw.pageMs);
  const filtered = summarize(raw.filteredMs);
  const etcd = summarize(raw.etcdMs);
  return {
    rounds: raw.rounds,
    seconds: raw.seconds,
    ...(page ? { pageMs: page } : {}),
    ...(filtered ? { filteredMs: filtered } : {}),
    ...(etcd ? { etcdRangeMs: etcd } : {}),
    pageJobs: raw.pageJobs,
    filteredJobs: raw.filteredJobs,
    etcdKeys: raw.etcdKeys,
    errors: raw.errors,
    ...(raw.firstError !== undefined ? { firstError: raw.firstError } : {}),
  };
}

function describeProbe(p: ApiProbeDetails): string {
  const ms = (s: { p50: number; p99: number } | undefined): string => (s ? `P50 ${s.p50.toFixed(2)} / P99 ${s.p99.toFixed(2)} ms` : '-');
  return `${p.rounds} rounds in ${p.seconds.toFixed(1)} s: page ${ms(p.pageMs)}, filtered ${ms(p.filteredMs)}, etcd range ${ms(p.etcdRangeMs)}`;
}
