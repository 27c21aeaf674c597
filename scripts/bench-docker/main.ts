#!/usr/bin/env node
/**
 * The real-container bench: what Titan costs over plain Docker on this
 * machine. Its own etcd, one master and ONE worker process running real
 * containers (network none); the same short containers run straight through
 * dockerode for the baseline. Prints one JSON object on stdout; progress on
 * stderr.
 *
 *   npm run bench:docker -- --containers 100
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { submitJobs } from '../../internal/cli/bulk-submit.js';
import { dockerFromEnv, probeDocker } from '../../internal/localcluster/docker-probe.js';
import { anyFreePort, findEtcdBinary, startEtcdServer, type EtcdProcess } from '../../internal/localcluster/etcd-process.js';
import { buildJobSpec, isFinal, newJobId, parseCpu, parseMemory, parsePositiveInteger, type Job } from '../../pkg/model/index.js';
import { Store } from '../../pkg/store/index.js';
import { JobCache } from '../bench/job-cache.js';
import { MasterProcess } from '../bench/master-process.js';
import { summarize, roundFigure } from '../bench/percentiles.js';
import { sleep, waitFor, waitForNode } from '../bench/wait.js';
import { ManagedProcess } from '../chaos/processes.js';
import { ChunkFollower, LineAssembler, uptimeOffsetMs } from './logs.js';
import { PlacementProbe } from './placement-probe.js';
import { countLabelled, removeLabelled, runRawContainers, type RawRunResult } from './raw.js';
import { overallRate, runTitanRound, sumOf, type TitanRound } from './throughput.js';

interface Options {
  containers: number;
  image: string;
  parallel: number;
  rounds: number;
  logLines: number;
  logBytes: number;
  longLimit: number;
  /** Every container's limits, Titan's and the baseline's alike (millicores, bytes). */
  jobCpu: number;
  jobMemory: number;
  skipCap: boolean;
  keep: boolean;
}

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PREFIX = '/titan-bench-docker';
const SHORT_CMD = 'echo hi';
const MAX_LOG = '16Mi';
const CAP_LOG = '1Mi';
const CAP_BYTES = 1024 * 1024;
/** Placement probes: one job per interval, and how long the idle round lasts. */
const PROBE_INTERVAL_MS = 50;
const PROBE_IDLE_MS = 1000;

const progress = (msg: string): void => {
  process.stderr.write(`bench:docker: ${msg}\n`);
};

function parseOptions(): Options {
  const o = new Command('bench-docker')
    .option('--containers <n>', 'containers in the throughput and long-running phases', '100')
    .option('--image <image>', 'image with busybox sh, sleep, yes, head', process.env.TITAN_TEST_IMAGE ?? 'titan-test/busybox:latest')
    .option('--parallel <n>', 'containers at once in the raw Docker baseline', '8')
    .option('--rounds <n>', 'throughput rounds, each --containers through raw Docker and through Titan (raw first in odd rounds)', '2')
    .option('--log-lines <n>', 'lines (one per 100 ms) in the log latency phase', '50')
    .option('--log-bytes <n>', 'bytes written in the log throughput phase', '10000000')
    .option('--long-limit <seconds>', 'limit for all long containers to be Running', '60')
    // A limit of a few millicores throttles even `echo hi` (CFS quota per 100 ms period): the
    // default gives each container a whole CPU, and the baseline gets the same limits.
    .option('--job-cpu <cpu>', 'CPU limit of every container, Titan job and baseline alike', '1')
    .option('--job-mem <bytes>', 'memory limit of every container', '32Mi')
    .option('--skip-cap', 'skip the per-job log cap check (it restarts the worker with --max-log 1Mi)')
    .option('--keep', 'keep the temp dir with the etcd, master and worker logs')
    .parse()
    .opts<Record<string, string | boolean>>();
  return {
    containers: parsePositiveInteger(String(o.containers), '--containers'),
    image: String(o.image),
    parallel: parsePositiveInteger(String(o.parallel), '--parallel'),
    rounds: parsePositiveInteger(String(o.rounds), '--rounds'),
    logLines: parsePositiveInteger(String(o.logLines), '--log-lines'),
    logBytes: parsePositiveInteger(String(o.logBytes), '--log-bytes'),
    longLimit: parsePositiveInteger(String(o.longLimit), '--long-limit'),
    jobCpu: parseCpu(String(o.jobCpu), '--job-cpu'),
    jobMemory: parseMemory(String(o.jobMem), '--job-mem'),
    skipCap: o.skipCap === true,
    keep: o.keep === true,
  };
}

function makeJobs(options: Options, cmd: string, count: number, name: string): Job[] {
  const spec = buildJobSpec({ image: options.image, cmd, cpu: `${options.jobCpu}m`, memory: String(options.jobMemory) });
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => ({ ...spec, name: `${name}-${i}`, id: newJobId(), state: 'Pending', createdAt: now, attempt: 0 }));
}

function workerProcess(options: Options, nodeId: string, dir: string, env: NodeJS.ProcessEnv, maxLog: string): ManagedProcess {
  const args = ['--node-id', nodeId, '--state-dir', path.join(dir, nodeId), '--ttl', '5', '--network', 'none', '--docker', 'on'];
  // Room for every long-running container at once: the capacity is what the worker offers, not the host's cores.
  const cpu = Math.max(64_000, options.containers * options.jobCpu);
  const memory = Math.max(64 * 2 ** 30, options.containers * options.jobMemory);
  args.push('--cpu', `${cpu}m`, '--memory', String(memory), '--max-log', maxLog, '--stop-grace', '2s');
  return new ManagedProcess(nodeId, path.join(DIST, 'cmd/worker/main.js'), args, env, dir);
}

const round = (v: number | undefined): number | undefined => roundFigure(v);

async function main(): Promise<void> {
  const options = parseOptions();
  const probe = await probeDocker();
  if (!probe.ok) throw new Error(`no Docker engine answers at ${probe.where}: ${probe.why ?? ''}`);
  const { docker } = dockerFromEnv();
  await docker.getImage(options.image).inspect().catch(() => {
    throw new Error(`image ${options.image} is not present (nothing can be pulled here)`);
  });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-bench-docker-'));
  const runId = path.basename(dir);
  const nodeId = `bench-${runId.slice(-6).toLowerCase()}`;
  const capNodeId = `${nodeId}-cap`;
  const result: Record<string, unknown> = { containers: options.containers, image: options.image, cores: os.cpus().length };
  const errors: string[] = [];
  const n = options.containers;

  let etcd: EtcdProcess | undefined;
  let master: MasterProcess | undefined;
  let store: Store | undefined;
  let cache: JobCache | undefined;
  const workers: ManagedProcess[] = [];
  const probes: PlacementProbe[] = [];
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    progress('cleaning up');
    await Promise.all(workers.map((w) => w.kill('SIGTERM')));
    await Promise.all(probes.map((p) => p.close()));
    await master?.stop(5000);
    await cache?.stop().catch(() => undefined);
    store?.close();
    for (const id of [nodeId, capNodeId]) await removeLabelled(docker, 'titan.node', id).catch(() => 0);
    await removeLabelled(docker, 'titan.bench', runId).catch(() => 0);
    await etcd?.stop();
    if (!options.keep) fs.rmSync(dir, { recursive: true, force: true });
    else progress(`logs kept in ${dir}`);
  };
  process.once('SIGINT', () => {
    void cleanup().finally(() => process.exit(130));
  });

  try {
    // 1. The cluster. It idles through the raw rounds, as it would beside any Docker work on a worker's host.
    const port = await anyFreePort();
    etcd = await startEtcdServer(findEtcdBinary(), dir, port);
    const endpoints = `127.0.0.1:${port}`;
    const env = { TITAN_ENDPOINTS: endpoints, TITAN_PREFIX: PREFIX, LOG_LEVEL: 'warn', TITAN_MASTER_RETAIN_JOBS: String(10 * (options.rounds + 1) * n + 1000), TITAN_MASTER_COMPACT_HISTORY: '5s' };
    master = new MasterProcess({ script: path.join(DIST, 'cmd/master/main.js'), endpoints, prefix: PREFIX, logFile: path.join(dir, 'master.log'), env });
    master.start();
    const worker = workerProcess(options, nodeId, dir, env, MAX_LOG);
    workers.push(worker);
    worker.start();
    const s = new Store({ endpoints: [endpoints], prefix: PREFIX });
    store = s;
    const c = new JobCache(s);
    cache = c;
    await c.start();
    const m = master;
    const failure = (w: ManagedProcess) => (): string | undefined => m.failure() ?? (w.running() ? undefined : `worker ${w.name} exited; see ${path.join(dir, `${w.name}.log`)}`);
    const nodeWait = await waitForNode(s, nodeId, failure(worker));
    if (nodeWait) throw new Error(nodeWait);
    progress(`cluster up: etcd ${endpoints}, master, worker ${nodeId}`);

    // 2. The same short containers, plain Docker and through Titan, in rounds: one measurement of
    //    each varies by several percent on a busy host. Rounds alternate which side goes first
    //    (raw, Titan, Titan, raw, ...), so neither always meets the engine first, and a drift over
    //    the run, if any, weighs on both alike.
    {
      const rawRounds: RawRunResult[] = [];
      const titanRounds: TitanRound[] = [];
      const pids = { worker: () => worker.pid, master: () => master?.pid, etcd: etcd.child.pid };
      const rawRound = async (r: number): Promise<void> => {
        progress(`round ${r}/${options.rounds}: raw Docker, ${n} x '${SHORT_CMD}', ${options.parallel} at a time`);
        const raw = await runRawContainers(docker, { image: options.image, command: ['/bin/sh', '-c', SHORT_CMD], cpu: options.jobCpu, memory: options.jobMemory, count: n, parallel: options.parallel, label: runId });
        rawRounds.push(raw);
        progress(`round ${r}/${options.rounds}: raw Docker ${raw.perSec.toFixed(1)} containers/s`);
      };
      const titanRound = async (r: number): Promise<void> => {
        progress(`round ${r}/${options.rounds}: through Titan`);
        const titan = await runTitanRound(s, c, makeJobs(options, SHORT_CMD, n, `short-${r}`), pids, failure(worker), progress);
        titanRounds.push(titan);
        if (titan.error) errors.push(`titan throughput, round ${r}: ${titan.error}`);
        if (titan.succeeded < n) errors.push(`titan throughput, round ${r}: ${n - titan.succeeded} of ${n} jobs did not succeed`);
        progress(`round ${r}/${options.rounds}: titan ${(titan.succeeded / titan.seconds).toFixed(1)} containers/s`);
      };
      for (let r = 1; r <= options.rounds; r++) {
        if (r % 2 === 1) {
          await rawRound(r);
          await titanRound(r);
        } else {
          await titanRound(r);
          await rawRound(r);
        }
      }
      const rawPerSec = overallRate(rawRounds.map((r) => ({ count: r.containers, seconds: r.seconds })));
      const titanPerSec = overallRate(titanRounds.map((t) => ({ count: t.succeeded, seconds: t.seconds })));
      const runs = summarize(titanRounds.flatMap((t) => t.runMs));
      const cpuSum = (pick: (t: TitanRound) => number | undefined): number | undefined => round(sumOf(titanRounds.map(pick)));
      Object.assign(result, {
        rawContainersPerSec: round(rawPerSec),
        rawSeconds: round(rawRounds.reduce((sum, r) => sum + r.seconds, 0)),
        rawFailures: rawRounds.reduce((sum, r) => sum + r.failures, 0),
        rawParallel: options.parallel,
        titanContainersPerSec: round(titanPerSec),
        titanSeconds: round(titanRounds.reduce((sum, t) => sum + t.seconds, 0)),
        titanSucceeded: titanRounds.reduce((sum, t) => sum + t.succeeded, 0),
        containersRatio: round(titanPerSec / rawPerSec),
        rounds: options.rounds,
        rawRoundsPerSec: rawRounds.map((r) => round(r.perSec)),
        titanRoundsPerSec: titanRounds.map((t) => round(t.succeeded / t.seconds)),
        // Per round, as seen from its submit (this host's clock): the first and last claim, the last end.
        titanSubmitSeconds: titanRounds.map((t) => round(t.submitSeconds)),
        titanFirstClaimMs: titanRounds.map((t) => round(t.firstClaimMs)),
        titanLastClaimMs: titanRounds.map((t) => round(t.lastClaimMs)),
        titanLastEndMs: titanRounds.map((t) => round(t.lastEndMs)),
        titanRunP50Ms: round(runs?.p50),
        titanRunMaxMs: round(runs?.max),
        // CPU-seconds over the Titan rounds: Titan's own processes, and the whole host.
        titanCpuSeconds: {
          worker: cpuSum((t) => t.cpu.worker),
          master: cpuSum((t) => t.cpu.master),
          etcd: cpuSum((t) => t.cpu.etcd),
          bench: cpuSum((t) => t.cpu.bench),
          host: cpuSum((t) => t.cpu.host),
          hostCapacity: cpuSum((t) => t.cpu.hostCapacity),
        },
      });
      progress(`throughput: raw ${rawPerSec.toFixed(2)}/s, titan ${titanPerSec.toFixed(2)}/s over ${options.rounds} rounds (ratio ${(titanPerSec / rawPerSec).toFixed(3)})`);
    }

    // 3. N long containers at once.
    {
      const jobs = makeJobs(options, 'sleep 30', n, 'long');
      const ids = jobs.map((j) => j.id);
      const started = performance.now();
      await submitJobs(s, jobs);
      // Titan marks a job Running when its worker claims it, just before the
      // container is created; Docker's own view says when it really runs.
      let titanAt: number | undefined;
      let dockerAt: number | undefined;
      let dockerRunning = 0;
      const limitAt = started + options.longLimit * 1000;
      while (performance.now() < limitAt && (titanAt === undefined || dockerAt === undefined)) {
        const f = failure(worker)();
        if (f) {
          errors.push(`long: ${f}`);
          break;
        }
        if (titanAt === undefined && c.count(ids, (st) => st === 'Running') === n) titanAt = performance.now();
        if (dockerAt === undefined) {
          dockerRunning = (await docker.listContainers({ filters: { label: [`titan.node=${nodeId}`], status: ['running'] } })).length;
          if (dockerRunning >= n) dockerAt = performance.now();
        }
        await sleep(50);
      }
      const reached = c.count(ids, (st) => st === 'Running');
      const secs = (at: number | undefined): number | undefined => (at === undefined ? undefined : round((at - started) / 1000));
      Object.assign(result, {
        longRunningAllRunning: titanAt !== undefined && dockerAt !== undefined,
        longRunningSeconds: secs(dockerAt),
        longRunningTitanStateSeconds: secs(titanAt),
        longRunningReached: reached,
        longRunningDockerRunning: dockerRunning,
      });
      progress(`long: all ${reached}/${n} Running in Titan after ${secs(titanAt) ?? '-'} s, ${dockerRunning}/${n} running in Docker after ${secs(dockerAt) ?? '-'} s`);
      const cancelStarted = performance.now();
      await Promise.all(ids.map((id) => s.cancelJob(id, 1000).catch(() => undefined)));
      const ended = await waitFor(() => c.count(ids, isFinal) === n, { timeoutMs: 120_000, failure: failure(worker), progress: () => progress(`cancel: ${c.count(ids, isFinal)}/${n} ended`) });
      if (!ended.ok) errors.push(`cancel: ${ended.reason}`);
      let left = await countLabelled(docker, 'titan.node', nodeId);
      const deadline = Date.now() + 60_000;
      while (left > 0 && Date.now() < deadline) {
        await sleep(200);
        left = await countLabelled(docker, 'titan.node', nodeId);
      }
      if (left > 0) errors.push(`cancel: ${left} containers still there 60 s after the jobs ended`);
      Object.assign(result, { longCancelSeconds: round((performance.now() - cancelStarted) / 1000), longCancelled: c.count(ids, (st) => st === 'Cancelled'), longContainersLeft: left });
      progress(`cancel: done, ${left} containers left`);
    }

    // 4. Log latency: each line carries the kernel uptime it was printed at.
    {
      const offset = await uptimeOffsetMs();
      const cmd = `i=0; while [ $i -lt ${options.logLines} ]; do read up idle < /proc/uptime; echo "$i $up"; i=$((i+1)); sleep 0.1; done`;
      const [job] = makeJobs(options, cmd, 1, 'loglat');
      const latencies: number[] = [];
      const lines = new LineAssembler();
      const follower = new ChunkFollower(s, nodeId, job.id, 1, (chunk, arrivedAt) => {
        for (const entry of chunk.entries) {
          if (entry.stream !== 'stdout') continue;
          lines.push(entry.data, (line) => {
            const [, upText] = line.trim().split(' ');
            const printed = offset + Number(upText) * 1000;
            if (Number.isFinite(printed)) latencies.push(arrivedAt - printed);
          });
        }
      });
      await follower.start();
      await submitJobs(s, [job]);
      const done = await waitFor(() => c.count([job.id], isFinal) === 1, { timeoutMs: 120_000, failure: failure(worker) });
      await sleep(300);
      await follower.catchUp();
      await follower.stop();
      if (!done.ok) errors.push(`log latency: ${done.reason}`);
      const sum = summarize(latencies);
      Object.assign(result, {
        logLatencyP50Ms: round(sum?.p50),
        logLatencyP99Ms: round(sum?.p99),
        logLatencyMaxMs: round(sum?.max),
        logLatencyLines: latencies.length,
        logLatencyClock: '/proc/uptime (10 ms steps)',
      });
      progress(`log latency: p50 ${sum?.p50.toFixed(0)} ms, p99 ${sum?.p99.toFixed(0)} ms over ${latencies.length} lines`);
    }

    // 5. Log throughput: ~10 MB as fast as the container can write it, while
    // probe jobs measure placement latency (first idle, then during the stream).
    const bulkCmd = `yes 0123456789abcdef0123456789abcde | head -c ${options.logBytes}`;
    {
      const probe = new PlacementProbe(s, `${nodeId}-probe`, c.jobs);
      probes.push(probe);
      await probe.register();
      probe.start(PROBE_INTERVAL_MS);
      await sleep(PROBE_IDLE_MS);
      const idle = await probe.stop();
      const [job] = makeJobs(options, bulkCmd, 1, 'logbulk');
      const follower = new ChunkFollower(s, nodeId, job.id, 1);
      await follower.start();
      const target = options.logBytes * 0.99;
      const submitted = Date.now();
      probe.start(PROBE_INTERVAL_MS);
      await submitJobs(s, [job]);
      let finalSeen = false;
      const arrived = await waitFor(
        () => {
          if (follower.bytes >= target) return true;
          const j = c.jobs.get(job.id);
          if (j && isFinal(j.state)) finalSeen = true;
          return false;
        },
        { timeoutMs: 300_000, failure: failure(worker), pollMs: 5, progress: () => progress(`log throughput: ${(follower.bytes / 1e6).toFixed(1)} MB stored`) },
      );
      if (!arrived.ok) errors.push(`log throughput: ${arrived.reason}`);
      const allAt = follower.lastArrival;
      const loaded = await probe.stop();
      for (const [name, probed] of [['idle', idle], ['during logs', loaded]] as const) {
        if (probed.placed < probed.submitted) errors.push(`placement probe (${name}): ${probed.placed} of ${probed.submitted} placed`);
      }
      const ended = await waitFor(() => c.count([job.id], isFinal) === 1, { timeoutMs: 60_000, failure: failure(worker) });
      await follower.catchUp();
      await follower.stop();
      const j = c.jobs.get(job.id);
      const startedAt = j?.startedAt ?? submitted;
      const seconds = (allAt - startedAt) / 1000;
      if (!ended.ok) errors.push(`log throughput: job did not end: ${ended.reason}`);
      if (finalSeen && follower.bytes < target) errors.push(`log throughput: job ended with ${follower.bytes} bytes stored`);
      Object.assign(result, {
        logMBPerSec: round(follower.bytes / 1e6 / seconds),
        logBytesStored: follower.bytes,
        logSeconds: round(seconds),
        logSecondsFromSubmit: round((allAt - submitted) / 1000),
        logJobState: j?.state,
        placementIdleP50Ms: round(idle.summary?.p50),
        placementIdleP99Ms: round(idle.summary?.p99),
        placementDuringLogsP50Ms: round(loaded.summary?.p50),
        placementDuringLogsP99Ms: round(loaded.summary?.p99),
        placementDuringLogsProbes: loaded.placed,
      });
      progress(`log throughput: ${(follower.bytes / 1e6 / seconds).toFixed(2)} MB/s`);
      progress(`placement latency: p50 ${idle.summary?.p50.toFixed(0)} ms idle, ${loaded.summary?.p50.toFixed(0)} ms while the log streamed (${loaded.placed} probes)`);
    }

    // 6. The per-job cap: a worker with --max-log 1Mi, the same 10 MB.
    if (options.skipCap) {
      result.logCapHeld = 'skipped';
    } else {
      await worker.kill('SIGTERM');
      const gone = await (async () => {
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          const nodes = await s.listNodes();
          if (!nodes.items.some((i) => s.keys.idOf(i.key) === nodeId)) return true;
          await sleep(200);
        }
        return false;
      })();
      if (!gone) errors.push('cap: the first worker stayed registered 30 s after SIGTERM');
      const capWorker = workerProcess(options, capNodeId, dir, env, CAP_LOG);
      workers.push(capWorker);
      capWorker.start();
      const [job] = makeJobs(options, bulkCmd, 1, 'logcap');
      await submitJobs(s, [job]);
      const ended = await waitFor(() => c.count([job.id], isFinal) === 1, { timeoutMs: 120_000, failure: failure(capWorker) });
      if (!ended.ok) errors.push(`cap: ${ended.reason}`);
      const follower = new ChunkFollower(s, capNodeId, job.id, 1);
      await follower.catchUp();
      const j = c.jobs.get(job.id);
      Object.assign(result, {
        logCapHeld: follower.bytes <= CAP_BYTES + 64 * 1024,
        logCapStoredBytes: follower.bytes,
        logCapLimitBytes: CAP_BYTES,
        logCapJobState: j?.state,
        logCapNode: j?.node,
      });
      progress(`cap: ${follower.bytes} bytes stored with --max-log ${CAP_LOG} (job ${j?.state ?? '?'})`);
    }
  } catch (err) {
    errors.push(err instanceof Error ? err.message : String(err));
  } finally {
    await cleanup();
  }
  result.errors = errors;
  result.date = new Date().toISOString();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exitCode = errors.length === 0 ? 0 : 1;
}

main().catch((err: unknown) => {
  progress(err instanceof Error ? err.message : String(err));
  process.exit(2);
});
