#!/usr/bin/env node
/**
 * Short jobs end to end: N trivial jobs (`true`, 1 CPU each) from submit to
 * the last Succeeded, through one master and one worker, beside the raw
 * reference measured in the same run: for shell jobs a plain Node.js loop
 * spawning `sh -c true`, as many at a time as the worker offers CPUs; for
 * Docker jobs the same containers straight through dockerode. Rounds
 * alternate which side goes first. Prints jobs/s, the ratio to the raw
 * reference, start latency (submit to process start) and CPU per job of
 * the master, the worker and etcd (from /proc), as text or --output json.
 * With --peer slurm the shell jobs also run through a private Slurm (Debian's
 * slurm-wlm and munge, started here) as one `sbatch --array` per round.
 *
 *   npm run bench:e2e -- --jobs 1000 --kind shell
 *   npm run bench:e2e -- --jobs 300 --rounds 1 --peer slurm
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { dockerFromEnv, probeDocker } from '../../internal/localcluster/docker-probe.js';
import { anyFreePort, findEtcdBinary, startEtcdServer, type EtcdProcess } from '../../internal/localcluster/etcd-process.js';
import { buildJobSpec, newJobId, parseNonNegativeInteger, parsePositiveInteger, type Job } from '../../pkg/model/index.js';
import { Store } from '../../pkg/store/index.js';
import { JobCache } from '../bench/job-cache.js';
import { MasterProcess } from '../bench/master-process.js';
import { roundFigure, summarize } from '../bench/percentiles.js';
import { etcdDbSize, waitForRetention, type EtcdDbSize } from '../bench/etcd-retention.js';
import { heapProbeEnv, liveHeapMiB } from '../bench/heap-reading.js';
import { childPidsRunning, rssMiB } from '../bench/proc-stats.js';
import { waitForNode } from '../bench/wait.js';
import { removeLabelled, runRawContainers } from '../bench-docker/raw.js';
import { overallRate, runTitanRound, sumOf, type TitanRound } from '../bench-docker/throughput.js';
import { ManagedProcess } from '../chaos/processes.js';
import { runRawSpawns } from './raw-spawn.js';
import { formatEtcdSize, formatResults, type EtcdSizeResult, type Kind, type KindResult, type Peer, type PeerResult } from './report.js';
import { findSlurmTools, SlurmCluster } from './slurm-cluster.js';
import { runSlurmRound, type SlurmRound } from './slurm-peer.js';


interface Options {
  jobs: number;
  kinds: Kind[];
  slots: number;
  dockerParallel: number;
  rounds: number;
  image: string;
  output: 'text' | 'json';
  keep: boolean;
  peer?: Peer;
  /** The master keeps at most this many ended jobs; the bench then waits for retention and reports etcd's size. */
  retainJobs?: number;
}

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PREFIX = '/titan-bench-e2e';
const progress = (msg: string): void => void process.stderr.write(`bench:e2e: ${msg}\n`);

function parseOptions(): Options {
  const o = new Command('bench-e2e')
    .option('--jobs <n>', 'jobs per round, and as many raw runs', '1000')
    .option('--kind <kind>', 'shell, docker or all', 'shell')
    .option('--slots <n>', 'CPUs the worker offers (1 per job), and shell spawns at once in the raw reference', '64')
    .option('--docker-parallel <n>', 'containers at once in the raw Docker reference', '8')
    .option('--rounds <n>', 'rounds of each kind, each the raw reference and Titan (raw first in odd rounds)', '2')
    .option('--image <image>', 'image for docker jobs', process.env.TITAN_TEST_IMAGE ?? 'titan-test/busybox:latest')
    .option('-o, --output <format>', 'text or json', 'text')
    .option('--peer <scheduler>', 'also run the shell jobs through another scheduler started here: slurm (needs Debian\'s slurmctld, slurmd, slurm-client and munge)')
    .option('--keep', 'keep the temp dirs with the etcd, master, worker (and Slurm) logs')
    .option('--retain-jobs <n>', 'the master keeps at most n ended jobs (a sweep every 2 s); after the rounds, wait for retention and compaction and report etcd\'s size in use')
    .parse()
    .opts<Record<string, string | boolean>>();
  const kind = String(o.kind);
  if (!['shell', 'docker', 'all'].includes(kind)) throw new Error(`--kind: "${kind}" is not shell, docker or all`);
  const output = String(o.output);
  if (output !== 'text' && output !== 'json') throw new Error(`--output: "${output}" is not text or json`);
  const peer = o.peer === undefined ? undefined : String(o.peer);
  if (peer !== undefined && peer !== 'slurm') throw new Error(`--peer: "${peer}" is not slurm`);
  if (peer !== undefined && kind === 'docker') throw new Error(`--peer ${peer} runs shell jobs: use --kind shell or all`);
  return {
    jobs: parsePositiveInteger(String(o.jobs), '--jobs'),
    kinds: kind === 'all' ? ['shell', 'docker'] : [kind as Kind],
    slots: parsePositiveInteger(String(o.slots), '--slots'),
    dockerParallel: parsePositiveInteger(String(o.dockerParallel), '--docker-parallel'),
    rounds: parsePositiveInteger(String(o.rounds), '--rounds'),
    image: String(o.image),
    output,
    keep: o.keep === true,
    ...(peer !== undefined ? { peer } : {}),
    ...(o.retainJobs !== undefined ? { retainJobs: parseNonNegativeInteger(String(o.retainJobs), '--retain-jobs') } : {}),
  };
}

function makeJobs(kind: Kind, options: Options, round: number): Job[] {
  const base = { cpu: '1', memory: '32Mi' };
  const spec = buildJobSpec(kind === 'shell' ? { ...base, shell: 'true' } : { ...base, image: options.image, cmd: 'true' });
  const now = Date.now();
  return Array.from({ length: options.jobs }, (_, i) => ({ ...spec, name: `e2e-${kind}-${round}-${i}`, id: newJobId(), state: 'Pending', createdAt: now, attempt: 0 }));
}

const perJobMs = (seconds: number | undefined, jobs: number): number | undefined => (seconds === undefined ? undefined : roundFigure((seconds * 1000) / jobs));

/** The Slurm peer's figures over its rounds, beside the same raw reference. */
function slurmResult(rounds: readonly SlurmRound[], rawPerSec: number, total: number): PeerResult {
  const perSec = overallRate(rounds.map((r) => ({ count: r.succeeded, seconds: r.seconds })));
  const latency = summarize(rounds.flatMap((r) => r.startsMs));
  return {
    peer: 'slurm',
    jobsPerSec: roundFigure(perSec) ?? 0,
    ratio: roundFigure(perSec / rawPerSec) ?? 0,
    ...(latency ? { startP50Ms: roundFigure(latency.p50), startP99Ms: roundFigure(latency.p99) } : {}),
    cpuMsPerJob: { slurmctld: perJobMs(sumOf(rounds.map((r) => r.cpu.slurmctld)), total), slurmd: perJobMs(sumOf(rounds.map((r) => r.cpu.slurmd)), total) },
    failures: rounds.reduce((n, r) => n + r.count - r.succeeded, 0),
  };
}

/** etcd's size at the start, after the rounds, and once retention and compaction are through (at most 2 minutes). */
async function etcdAfterRetention(store: Store, atStart: EtcdDbSize, retain: number, failure: () => string | undefined): Promise<EtcdSizeResult> {
  const afterRounds = await etcdDbSize(store);
  const deadline = performance.now() + 120_000;
  const check = (what: string): void => {
    const failed = failure();
    if (failed) throw new Error(`retention: ${failed}`);
    if (performance.now() > deadline) throw new Error(`retention: timed out ${what}`);
  };
  const started = performance.now();
  const { jobsLeft, size } = await waitForRetention(store, { retain, check, progress });
  const mib = (v: number): number => roundFigure(v) ?? 0;
  return {
    retainJobs: retain,
    jobsLeft,
    inUseMiB: { atStart: mib(atStart.inUseMiB), afterRounds: mib(afterRounds.inUseMiB), afterRetention: mib(size.inUseMiB) },
    fileMiB: { atStart: mib(atStart.dbMiB), afterRounds: mib(afterRounds.dbMiB), afterRetention: mib(size.dbMiB) },
    retentionSeconds: mib((performance.now() - started) / 1000),
  };
}

async function main(): Promise<void> {
  const options = parseOptions();
  // Before anything starts: a missing package is told at once, with the command that installs it.
  if (options.peer === 'slurm') findSlurmTools();
  const docker = options.kinds.includes('docker') ? dockerFromEnv().docker : undefined;
  if (docker) {
    const probe = await probeDocker();
    if (!probe.ok) throw new Error(`--kind docker: no Docker engine answers at ${probe.where}: ${probe.why ?? ''}`);
    await docker.getImage(options.image).inspect().catch(() => {
      throw new Error(`image ${options.image} is not present (nothing can be pulled here)`);
    });
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-bench-e2e-'));
  const runId = path.basename(dir);
  const nodeId = `e2e-${runId.slice(-6).toLowerCase()}`;
  let etcd: EtcdProcess | undefined;
  let master: MasterProcess | undefined;
  let worker: ManagedProcess | undefined;
  let store: Store | undefined;
  let cache: JobCache | undefined;
  let slurm: SlurmCluster | undefined;
  try {
    if (options.peer === 'slurm') {
      progress('starting Slurm (munged, slurmctld, slurmd)');
      slurm = await SlurmCluster.start({ slots: options.slots, memoryMiB: options.slots * 1024, maxJobs: options.jobs * options.rounds, keep: options.keep });
    }
    const port = await anyFreePort();
    etcd = await startEtcdServer(findEtcdBinary(), dir, port);
    const endpoints = `127.0.0.1:${port}`;
    // Without --retain-jobs, nothing is removed while the bench reads its jobs' ends.
    const retain = String(options.retainJobs ?? 10 * options.jobs * options.rounds * options.kinds.length + 1000);
    const heapDir = path.join(dir, 'heap');
    fs.mkdirSync(heapDir);
    // The master and the worker answer SIGUSR2 with their live heap (scripts/bench/heap-probe.ts); the launcher gets none of this environment.
    const env = { TITAN_ENDPOINTS: endpoints, TITAN_PREFIX: PREFIX, LOG_LEVEL: 'warn', TITAN_MASTER_RETAIN_JOBS: retain, TITAN_MASTER_COMPACT_HISTORY: '5s', ...(options.retainJobs !== undefined ? { TITAN_MASTER_RETENTION_INTERVAL: '2s' } : {}), ...heapProbeEnv(heapDir) };
    master = new MasterProcess({ script: path.join(DIST, 'cmd/master/main.js'), endpoints, prefix: PREFIX, logFile: path.join(dir, 'master.log'), env });
    master.start();
    const executors = options.kinds.join(',');
    worker = new ManagedProcess(nodeId, path.join(DIST, 'cmd/worker/main.js'), [
      '--node-id', nodeId, '--state-dir', path.join(dir, nodeId), '--ttl', '5', '--network', 'none', '--executors', executors,
      '--docker', docker ? 'on' : 'off', '--cpu', String(options.slots), '--memory', `${options.slots}Gi`,
    ], env, dir);
    worker.start();
    store = new Store({ endpoints: [endpoints], prefix: PREFIX });
    // Jobs retention removes keep their end here: the rounds count them.
    cache = new JobCache(store, { keepRemoved: options.retainJobs !== undefined });
    await cache.start();
    const [m, w] = [master, worker];
    const failure = (): string | undefined => m.failure() ?? (w.running() ? undefined : `the worker exited; see ${path.join(dir, `${nodeId}.log`)}`);
    const notRegistered = await waitForNode(store, nodeId, failure);
    if (notRegistered) throw new Error(notRegistered);
    const etcdAtStart = options.retainJobs !== undefined ? await etcdDbSize(store) : undefined;
    const pids = { worker: () => w.pid, launcher: () => childPidsRunning(w.pid, 'launcher-main.js')[0], master: () => m.pid, etcd: etcd.child.pid };

    const results: KindResult[] = [];
    for (const kind of options.kinds) {
      const raw: { count: number; seconds: number; spawnerCpu?: number; failures: number }[] = [];
      const titan: TitanRound[] = [];
      const starts: number[] = [];
      const memory: NonNullable<KindResult['rssMiBAfterRounds']> = [];
      const heap: NonNullable<KindResult['liveHeapMiBAfterRounds']> = [];
      const peer: SlurmRound[] = [];
      const rawRound = async (): Promise<void> => {
        if (kind === 'shell') {
          const r = await runRawSpawns({ command: 'true', count: options.jobs, parallel: options.slots });
          raw.push({ count: r.count, seconds: r.seconds, spawnerCpu: r.spawnerCpuSeconds, failures: r.failures });
        } else if (docker) {
          const r = await runRawContainers(docker, { image: options.image, command: ['/bin/sh', '-c', 'true'], cpu: 1000, memory: 32 * 2 ** 20, count: options.jobs, parallel: options.dockerParallel, label: runId });
          raw.push({ count: r.containers, seconds: r.seconds, failures: r.failures });
        }
        progress(`${kind}: raw ${(options.jobs / (raw.at(-1)?.seconds ?? 1)).toFixed(1)} jobs/s`);
      };
      const titanRound = async (r: number): Promise<void> => {
        const jobs = makeJobs(kind, options, r);
        const round = await runTitanRound(store as Store, cache as JobCache, jobs, pids, failure, progress);
        if (round.error) throw new Error(`${kind} round ${r}: ${round.error}`);
        titan.push(round);
        for (const j of jobs) {
          const seen = cache?.jobs.get(j.id);
          if (seen?.startedAt !== undefined) starts.push(seen.startedAt - j.createdAt);
        }
        const rss = { master: roundFigure(rssMiB(m.pid)), worker: roundFigure(rssMiB(w.pid)), launcher: roundFigure(rssMiB(pids.launcher())) };
        memory.push(rss);
        const live = { master: roundFigure(await liveHeapMiB(heapDir, m.pid)), worker: roundFigure(await liveHeapMiB(heapDir, w.pid)) };
        heap.push(live);
        progress(
          `${kind}: titan ${(round.succeeded / round.seconds).toFixed(1)} jobs/s; RSS after it: master ${rss.master} MiB, worker ${rss.worker} MiB, launcher ${rss.launcher ?? '-'} MiB;` +
            ` live heap: master ${live.master ?? '-'} MiB, worker ${live.worker ?? '-'} MiB`,
        );
      };
      const peerCluster = kind === 'shell' ? slurm : undefined;
      const peerRound = async (r: number): Promise<void> => {
        if (!peerCluster) return;
        const round = await runSlurmRound(peerCluster, { jobs: options.jobs, round: r, memoryMiB: 32 }, progress);
        if (round.error) throw new Error(`slurm ${kind} round ${r}: ${round.error}`);
        peer.push(round);
        progress(`${kind}: slurm ${(round.succeeded / round.seconds).toFixed(1)} jobs/s`);
      };
      for (let r = 1; r <= options.rounds; r++) {
        if (r % 2 === 1) {
          await rawRound();
          await titanRound(r);
          await peerRound(r);
        } else {
          await peerRound(r);
          await titanRound(r);
          await rawRound();
        }
      }
      const rawPerSec = overallRate(raw);
      const titanPerSec = overallRate(titan.map((t) => ({ count: t.succeeded, seconds: t.seconds })));
      const total = options.jobs * options.rounds;
      const latency = summarize(starts);
      results.push({
        kind,
        jobs: options.jobs,
        rounds: options.rounds,
        rawJobsPerSec: roundFigure(rawPerSec) ?? 0,
        titanJobsPerSec: roundFigure(titanPerSec) ?? 0,
        ratio: roundFigure(titanPerSec / rawPerSec) ?? 0,
        ...(latency ? { startP50Ms: roundFigure(latency.p50), startP99Ms: roundFigure(latency.p99) } : {}),
        cpuMsPerJob: {
          master: perJobMs(sumOf(titan.map((t) => t.cpu.master)), total),
          worker: perJobMs(sumOf(titan.map((t) => t.cpu.worker)), total),
          ...(kind === 'shell' ? { launcher: perJobMs(sumOf(titan.map((t) => t.cpu.launcher)), total) } : {}),
          etcd: perJobMs(sumOf(titan.map((t) => t.cpu.etcd)), total),
          ...(kind === 'shell' ? { rawSpawner: perJobMs(sumOf(raw.map((r) => r.spawnerCpu)), total) } : {}),
        },
        failures: raw.reduce((n, r) => n + r.failures, 0) + titan.reduce((n, t) => n + options.jobs - t.succeeded, 0),
        rssMiBAfterRounds: memory,
        liveHeapMiBAfterRounds: heap,
        ...(peer.length > 0 ? { peers: [slurmResult(peer, rawPerSec, total)] } : {}),
      });
    }
    const etcdSize = etcdAtStart && (await etcdAfterRetention(store as Store, etcdAtStart, options.retainJobs ?? 0, failure));
    const report = { cores: os.cpus().length, slots: options.slots, loadAverage: os.loadavg().map((l) => roundFigure(l)), results, ...(etcdSize ? { etcd: etcdSize } : {}) };
    process.stdout.write(options.output === 'json' ? `${JSON.stringify(report)}\n` : `${formatResults(results)}\n${etcdSize ? `${formatEtcdSize(etcdSize)}\n` : ''}`);
  } finally {
    await slurm?.stop();
    await worker?.kill('SIGTERM');
    await master?.stop(5000);
    await cache?.stop().catch(() => undefined);
    store?.close();
    if (docker) {
      await removeLabelled(docker, 'titan.node', nodeId).catch(() => 0);
      await removeLabelled(docker, 'titan.bench', runId).catch(() => 0);
    }
    await etcd?.stop();
    if (!options.keep) fs.rmSync(dir, { recursive: true, force: true });
    else progress(`logs kept in ${dir}`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:e2e: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
