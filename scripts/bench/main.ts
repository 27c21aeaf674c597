#!/usr/bin/env node
/**
 * The Titan benchmark: its own etcd (or --endpoints), the real master as a
 * child process, and simulated nodes in this process speaking the worker
 * protocol through etcd. Measures, in one run: raw etcd throughput (the
 * reference), bulk submit, placement throughput, dispatch latency at a
 * steady submit rate, master memory and etcd's database size. Progress goes
 * to stderr; the result to stdout (a table and the JSON object, or with
 * --output json the object alone). See docs/benchmarks.md.
 *
 *   npm run bench -- --nodes 1000 --jobs 20000 --output json
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommanderError } from 'commander';
import { setupLocalAuth } from '../../internal/cli/auth.js';
import { makeDevPki } from '../../internal/localcluster/dev-pki.js';
import { anyFreePort, findEtcdBinary, startEtcdServer, type EtcdProcess } from '../../internal/localcluster/etcd-process.js';
import { resolveEtcdConnection, type EtcdConnectionFlags } from '../../pkg/config/etcd-connection.js';
import { isTitanError } from '../../pkg/model/index.js';
import { Store } from '../../pkg/store/index.js';
import { completeApiRatios } from './api-figures.js';
import { ApiBench } from './api-phases.js';
import { arraysPhase } from './array-phase.js';
import { deleteInBatches } from './etcd-reference.js';
import { MasterProcess } from './master-process.js';
import { parseBenchOptions, type BenchOptions } from './options.js';
import {
  BurstTracker,
  clusterCapacityInJobs,
  dispatchPhase,
  drainPhase,
  ensureLeadingMaster,
  etcdDbStartPhase,
  etcdReferencePhase,
  finalPhase,
  placementPhase,
  retentionPhase,
  submitPhase,
  type BenchContext,
} from './phases.js';
import { roundFigure } from './percentiles.js';
import { formatReport, jobsOfRun, type BenchResult } from './report.js';
import { SimNodes } from './sim-nodes.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const started = performance.now();

function progress(message: string): void {
  process.stderr.write(`bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s  ${message}\n`);
}

/** Cleanup steps, run once, newest first; each bounded so a hung step cannot keep the process alive. */
class Cleanup {
  private readonly steps: { name: string; run: () => Promise<void> | void; timeoutMs: number }[] = [];
  private running: Promise<void> | undefined;

  add(name: string, run: () => Promise<void> | void, timeoutMs = 15_000): void {
    this.steps.push({ name, run, timeoutMs });
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of [...this.steps].reverse()) {
        try {
          const limit = new Promise((_, reject) => setTimeout(() => reject(new Error(`took over ${step.timeoutMs / 1000} s`)), step.timeoutMs).unref());
          await Promise.race([step.run(), limit]);
        } catch (err) {
          progress(`cleanup: ${step.name} failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    })();
    return this.running;
  }
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/** The source revision measured: the commit, and whether the tree had uncommitted changes. */
function sourceRevision(): string {
  const git = (...args: string[]): string =>
    execFileSync('git', args, { cwd: path.resolve(DIST, '..'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  try {
    const commit = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no').length > 0 ? `${commit} + uncommitted changes` : commit;
  } catch {
    return 'unknown';
  }
}

/**
 * The master's retention settings. Without --retain-jobs every job of the run
 * stays in etcd (the end state is measured with all of them), so the count is
 * set above the run's jobs, unless the caller's TITAN_MASTER_RETAIN_JOBS says
 * otherwise. With it, the flag wins, and the sweeps come every
 * --retention-interval (10 s by default) so the run need not wait minutes.
 */
function masterEnv(options: BenchOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    TITAN_MASTER_RETAIN_JOBS:
      options.retainJobs !== undefined
        ? String(options.retainJobs)
        : (process.env.TITAN_MASTER_RETAIN_JOBS ?? String(jobsOfRun(options) + 2 * options.arrayTasks + 1000)),
  };
  if (options.retentionIntervalMs !== undefined) env.TITAN_MASTER_RETENTION_INTERVAL = `${options.retentionIntervalMs}ms`;
  // The bench's etcd is its own: the short window its figures were measured with (the master's default is 5m).
  env.TITAN_MASTER_COMPACT_HISTORY = process.env.TITAN_MASTER_COMPACT_HISTORY ?? '5s';
  return env;
}

function emptyResult(options: BenchOptions, prefix: string, argv: readonly string[]): BenchResult {
  const cpus = os.cpus();
  return {
    etcdBatchedKeysPerSec: null,
    etcdSequentialPutsPerSec: null,
    submitJobsPerSec: null,
    placementsPerSec: null,
    placementEtcdRatio: null,
    dispatchP50Ms: null,
    dispatchP99Ms: null,
    masterRssMiB: null,
    etcdDbMiB: null,
    etcdDbMiBBefore: null,
    etcdDbMiBAfter: null,
    api: null,
    details: {},
    parameters: {
      nodes: options.nodes,
      jobs: options.jobs,
      rate: options.rate,
      latencyJobs: options.latencyJobs,
      warmupMs: options.warmupMs,
      nodeCpuMilli: options.nodeCpu,
      nodeMemoryBytes: options.nodeMemory,
      jobCpuMilli: options.jobCpu,
      jobMemoryBytes: options.jobMemory,
      complete: options.complete,
      runMs: options.runMs,
      ackConcurrency: options.ackConcurrency,
      nodesPerLease: options.nodesPerLease,
      ackDuringPlacement: options.ackDuringPlacement,
      retainJobs: options.retainJobs ?? null,
      retentionIntervalMs: options.retentionIntervalMs ?? null,
      etcd: options.endpoints ? 'external' : 'own',
      prefix,
      apiClients: options.api ? options.apiClients : null,
    },
    command: ['npm', 'run', 'bench', '--', ...argv].map(shellQuote).join(' '),
    revision: sourceRevision(),
    machine: {
      cpus: cpus.length,
      cpuModel: cpus[0]?.model.trim() ?? 'unknown',
      memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      loadAverageAtStart: os.loadavg()[0],
    },
    errors: [],
  };
}

const roundNumbers = (_key: string, v: unknown): unknown => (typeof v === 'number' ? roundFigure(v) : v);

/** Rounded copies of the figures, for printing (the measurements themselves stay exact until here). */
function rounded(result: BenchResult): BenchResult {
  const r = (v: number | null): number | null => (v === null ? null : (roundFigure(v) ?? null));
  return {
    ...result,
    etcdBatchedKeysPerSec: r(result.etcdBatchedKeysPerSec),
    etcdSequentialPutsPerSec: r(result.etcdSequentialPutsPerSec),
    submitJobsPerSec: r(result.submitJobsPerSec),
    placementsPerSec: r(result.placementsPerSec),
    placementEtcdRatio: r(result.placementEtcdRatio),
    dispatchP50Ms: r(result.dispatchP50Ms),
    dispatchP99Ms: r(result.dispatchP99Ms),
    masterRssMiB: r(result.masterRssMiB),
    etcdDbMiB: r(result.etcdDbMiB),
    etcdDbMiBBefore: r(result.etcdDbMiBBefore),
    etcdDbMiBAfter: r(result.etcdDbMiBAfter),
    api: result.api === null ? null : (JSON.parse(JSON.stringify(result.api, roundNumbers)) as BenchResult['api']),
    details: JSON.parse(JSON.stringify(result.details, roundNumbers)) as BenchResult['details'],
  };
}

function printResult(result: BenchResult, options: BenchOptions): void {
  const out = rounded(result);
  if (options.output === 'json') {
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    process.stdout.write(`${formatReport(out)}\n\n${JSON.stringify(out)}\n`);
  }
}

/** Set once the run is ending (done, interrupted, timed out): no phase starts after that. */
let shuttingDown = false;

async function runPhase(ctx: BenchContext, name: string, phase: () => Promise<void>): Promise<boolean> {
  if (shuttingDown) return false;
  try {
    await phase();
    return true;
  } catch (err) {
    if (shuttingDown) return false; // failures caused by the cleanup itself say nothing
    const message = err instanceof Error ? err.message : String(err);
    ctx.result.errors.push(message.startsWith(`${name}:`) ? message : `${name}: ${message}`);
    progress(`${name} FAILED: ${message}`);
    return false;
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let options: BenchOptions;
  try {
    options = parseBenchOptions(argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(isTitanError(err, 'InvalidInput') ? 2 : 1);
  }

  const prefix = `/titan-bench-${randomBytes(4).toString('hex')}`;
  const result = emptyResult(options, prefix, argv);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-bench-'));
  const cleanup = new Cleanup();
  cleanup.add('temp dir', () => {
    if (options.keepJobs && !options.endpoints) progress(`kept ${dir} (etcd data, master log)`);
    else fs.rmSync(dir, { recursive: true, force: true });
  });

  let finishing: Promise<never> | undefined;
  /** Cleans up, prints what was measured and exits; the first call wins, later ones wait for it. */
  const finish = (exitCode: number, reason?: string): Promise<never> => {
    finishing ??= (async (): Promise<never> => {
      shuttingDown = true;
      if (reason) {
        result.errors.push(reason);
        progress(`${reason}; cleaning up`);
      }
      result.details.totalSeconds = (performance.now() - started) / 1000;
      result.details.loadAverageAtEnd = os.loadavg()[0];
      await cleanup.run();
      completeApiRatios(result);
      printResult(result, options);
      process.exit(exitCode);
    })();
    return finishing;
  };
  const onSignal = (exitCode: number, reason: string): void => {
    // A second signal while cleaning up: leave now (the exit handlers still kill etcd and the master).
    if (finishing) process.exit(exitCode);
    void finish(exitCode, reason);
  };
  process.on('SIGINT', () => onSignal(130, 'interrupted'));
  process.on('SIGTERM', () => onSignal(143, 'terminated'));
  setTimeout(() => void finish(1, `overall timeout of ${options.timeoutSeconds} s`), options.timeoutSeconds * 1000).unref();

  try {
    // ---- etcd -------------------------------------------------------------------
    let endpoints = options.endpoints;
    let etcd: EtcdProcess | undefined;
    // --tls: the bench connects as etcd's root, the master as titan-master. Else TITAN_ETCD_* (an etcd of yours) apply to both.
    let benchCredentials: EtcdConnectionFlags | undefined;
    let masterCredentials: NodeJS.ProcessEnv = {};
    if (!endpoints) {
      const port = await anyFreePort();
      progress(`starting etcd on 127.0.0.1:${port}${options.tls ? ' with TLS and auth' : ''} (data in ${dir})`);
      const pki = options.tls ? makeDevPki(path.join(dir, 'pki'), []) : undefined;
      etcd = await startEtcdServer(findEtcdBinary(), dir, port, process.env, pki?.etcd);
      if (pki) {
        await setupLocalAuth(`127.0.0.1:${port}`, prefix, pki, []);
        benchCredentials = pki.flags('root');
        masterCredentials = pki.env('titan-master');
      }
      const ownEtcd = etcd;
      cleanup.add('etcd', () => ownEtcd.stop());
      process.on('exit', () => {
        if (ownEtcd.child.exitCode === null) ownEtcd.child.kill('SIGKILL');
      });
      endpoints = `127.0.0.1:${port}`;
    } else {
      progress(`using etcd at ${endpoints} under ${prefix}`);
    }
    const connection = benchCredentials ? resolveEtcdConnection({ endpoints, ...benchCredentials }, {}) : resolveEtcdConnection({ endpoints }, process.env);
    const store = new Store({ ...connection, prefix, callTimeoutMs: 30_000 });
    cleanup.add('etcd client', () => store.close());
    if (options.endpoints && !options.keepJobs) {
      // In small transactions: one DeleteRange over the jobs would slow the shared etcd down until its next compaction.
      cleanup.add(
        'bench keys',
        async () => {
          let deleted = 0;
          for (const name of ['assign', 'nodes', 'jobs', 'logs'] as const) deleted += await deleteInBatches(store, store.keys.collection(name));
          await store.call(() => store.client.kv.deleteRange({ key: Buffer.from(store.keys.leader()) }));
          progress(`removed the bench's ${deleted} keys under ${prefix}`);
        },
        120_000,
      );
    }

    // --api: the master serves its API on a free loopback port for the whole run (it keeps the port across restarts).
    const apiUrl = options.api ? `http://127.0.0.1:${await anyFreePort()}` : undefined;
    const master = new MasterProcess({
      script: path.join(DIST, 'cmd/master/main.js'),
      endpoints,
      prefix,
      logFile: path.join(dir, 'master.log'),
      ...(options.masterNodeOptions !== undefined ? { nodeOptions: options.masterNodeOptions } : {}),
      ...(options.masterCpuProf !== undefined ? { execArgv: ['--cpu-prof', '--cpu-prof-dir', path.resolve(options.masterCpuProf)] } : {}),
      env: { ...masterEnv(options), ...masterCredentials },
      ...(apiUrl !== undefined ? { args: ['--listen', apiUrl.slice('http://'.length)] } : {}),
    });
    process.on('exit', () => master.killNow());

    const nodes = new SimNodes({
      store,
      count: options.nodes,
      nodesPerLease: options.nodesPerLease,
      leaseTtlSeconds: options.leaseTtlSeconds,
      capacity: { cpu: options.nodeCpu, memory: options.nodeMemory, gpuMilli: 0 },
      complete: options.complete,
      runMs: options.runMs,
      ackConcurrency: options.ackConcurrency,
      warn: (message) => progress(`warning: ${message}`),
    });
    cleanup.add('simulated nodes', () => nodes.stop());
    // Registered after the nodes: runs before their leases are revoked, so the master never sees them leave.
    cleanup.add('master', () => master.stop());

    const ctx: BenchContext = { options, store, nodes, master, ...(etcd?.child.pid ? { etcdPid: etcd.child.pid } : {}), result, progress };
    let api: ApiBench | undefined;
    if (apiUrl !== undefined) {
      const apiBench = new ApiBench(ctx, {
        url: apiUrl,
        clientScript: path.join(DIST, 'scripts/bench/api-client.js'),
        etcd: { flags: { endpoints, ...benchCredentials }, useEnv: benchCredentials === undefined },
      });
      api = apiBench;
      cleanup.add('API clients', () => apiBench.abort());
      await apiBench.createToken();
    }

    await runPhase(ctx, 'etcd db size', () => etcdDbStartPhase(ctx));

    const capacity = clusterCapacityInJobs(options);
    const burstNeeds = options.complete ? options.jobs : jobsOfRun(options);
    if (burstNeeds > capacity) {
      progress(`warning: ${burstNeeds} jobs do not all fit on ${options.nodes} nodes (room for ${capacity}); placement will not finish`);
    }

    // With a burst, the reference is taken next to the placement measurement instead.
    if (options.jobs === 0) await runPhase(ctx, 'etcd reference', () => etcdReferencePhase(ctx, true));

    progress(`registering ${options.nodes} simulated nodes (${Math.ceil(options.nodes / options.nodesPerLease)} leases) and their assignment watch`);
    await nodes.register();
    await nodes.startWatch();

    if (options.jobs > 0) {
      let ids: Set<string> | undefined;
      await runPhase(ctx, 'submit', async () => {
        ids = await submitPhase(ctx);
      });
      await runPhase(ctx, 'etcd reference', () => etcdReferencePhase(ctx, true));
      if (ids && ids.size > 0) {
        const burst = new BurstTracker(nodes, ids, options.complete ? 'Succeeded' : 'Running');
        const placed = await runPhase(ctx, 'placement', () => (api ? api.placeFirstBurst(burst) : placementPhase(ctx, burst)));
        if (api && placed) {
          // With --api: the API's own figures at --jobs jobs (+ the followed one), then the second burst with the clients on.
          const withApi = api;
          await runPhase(ctx, 'api log', () => withApi.startLogWriter());
          await runPhase(ctx, 'api probe', () => withApi.idleProbe());
          await runPhase(ctx, 'acknowledge', () => withApi.loadedProbe(() => drainPhase(ctx, burst)));
          burst.dispose();
          await runPhase(ctx, 'placement with API clients', () => withApi.loadedBurst());
        } else {
          await runPhase(ctx, 'acknowledge', () => drainPhase(ctx, burst));
          burst.dispose();
        }
      }
    }
    nodes.releaseAcks();

    if (options.latencyJobs > 0) {
      const ready = await runPhase(ctx, 'master', () => ensureLeadingMaster(ctx));
      if (ready) await runPhase(ctx, 'dispatch', () => dispatchPhase(ctx));
      const withApi = api;
      if (ready && withApi) await runPhase(ctx, 'dispatch with API clients', () => withApi.loadedDispatch());
    }
    if (api) {
      const withApi = api;
      await runPhase(ctx, 'api', () => withApi.finish());
    }
    if (!master.running()) await runPhase(ctx, 'master', () => ensureLeadingMaster(ctx));
    await runPhase(ctx, 'end state', () => finalPhase(ctx));
    // The reference again, last so its writes touch no other figure; the headline is the mean of both.
    if (options.jobs > 0) await runPhase(ctx, 'etcd reference', () => etcdReferencePhase(ctx, false));
    // With --retain-jobs: the master's retention removes the ended jobs beyond the count and compacts; etcd's db again.
    if (options.retainJobs !== undefined) await runPhase(ctx, 'retention', () => retentionPhase(ctx));
    // Arrays last: it restarts the master twice and adds jobs, so it comes after every other figure is taken.
    if (options.arrayTasks > 0) await runPhase(ctx, 'arrays', () => arraysPhase(ctx));
  } catch (err) {
    await finish(1, `fatal: ${err instanceof Error ? err.message : String(err)}`);
  }
  await finish(result.errors.length === 0 ? 0 : 1);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
