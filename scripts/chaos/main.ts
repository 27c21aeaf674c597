#!/usr/bin/env node
/**
 * The chaos check: etcd, 2 masters and N workers as separate processes; jobs
 * (plain ones, an array's tasks, and jobs waiting for others with --after)
 * that report every run to a loopback collector; and, while they run, a
 * SIGKILL every few seconds to a random worker or the leading master, which
 * is then started again. Prints one JSON line: nothing may be lost, no job
 * or array task may run twice, and no dependent may start before the jobs
 * it waits for ended.
 *
 *   npm run chaos -- --jobs 200 --array 40 --dependents 20 --workers 3 --duration 60
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { dockerFromEnv, probeDocker } from '../../internal/localcluster/docker-probe.js';
import { setupLocalAuth } from '../../internal/cli/auth.js';
import { EtcdCluster } from '../../internal/cli/etcd-cluster.js';
import { planSubmission, type SubmitFlags } from '../../internal/cli/submit.js';
import { makeDevPki } from '../../internal/localcluster/dev-pki.js';
import { anyFreePort, findEtcdBinary, startEtcdServer } from '../../internal/localcluster/etcd-process.js';
import { nodeUser, resolveEtcdConnection } from '../../pkg/config/etcd-connection.js';
import { buildJobSpec, isFinal, newJobId, parsePositiveInteger, type Job } from '../../pkg/model/index.js';
import { Store } from '../../pkg/store/index.js';
import { startCollector } from './collector.js';
import { duplicateRunJobs, earlyDependents } from './ledger.js';
import { ManagedProcess } from './processes.js';

interface ChaosOptions {
  jobs: number;
  arrayTasks: number;
  dependents: number;
  workers: number;
  duration: number;
  killEvery: number;
  workerTtl: number;
  jobSeconds: number;
  drain: number;
  kind: 'docker' | 'shell' | 'auto';
  image: string;
  keep: boolean;
  tls: boolean;
}

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PREFIX = '/chaos';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Progress on stderr, each line with the wall-clock time so it lines up with the processes' logs. */
const say = (line: string) => process.stderr.write(`chaos: ${new Date().toISOString()} ${line}\n`);

function parseOptions(): ChaosOptions {
  const program = new Command('chaos')
    .option('--jobs <n>', 'jobs to submit', '200')
    .option('--array <n>', 'tasks of one array (%10) submitted besides', '40')
    .option('--dependents <n>', 'jobs waiting for others (any: a plain job, ok: the array) submitted besides', '20')
    .option('--workers <n>', 'worker processes', '3')
    .option('--duration <seconds>', 'how long to keep killing', '60')
    .option('--kill-every <seconds>', 'seconds between kills', '4')
    .option('--worker-ttl <seconds>', "workers' registration lease TTL: a worker restarted within it re-attaches to its runs; one restarted later has lost them to the master", '5')
    .option('--job-seconds <seconds>', 'how long each job runs', '2')
    .option('--drain <seconds>', 'how long to wait for every job to end after the chaos', '120')
    .option('--kind <kind>', 'docker, shell or auto (docker when an engine answers)', 'auto')
    .option('--image <image>', 'image for docker jobs (needs sh, sleep and busybox nc)', process.env.TITAN_TEST_IMAGE ?? 'titan-test/busybox:latest')
    .option('--keep', 'keep the temp dir with every process log')
    .option('--tls', 'etcd with TLS, client certificates (scripts/pki.sh) and auth on; each process its own etcd user')
    .parse();
  const o = program.opts<Record<string, string | boolean>>();
  const kind = String(o.kind);
  if (!['docker', 'shell', 'auto'].includes(kind)) throw new Error(`--kind: ${kind} is not docker, shell or auto`);
  return {
    jobs: parsePositiveInteger(String(o.jobs), '--jobs'),
    arrayTasks: parsePositiveInteger(String(o.array), '--array'),
    dependents: parsePositiveInteger(String(o.dependents), '--dependents'),
    workers: parsePositiveInteger(String(o.workers), '--workers'),
    duration: parsePositiveInteger(String(o.duration), '--duration'),
    killEvery: parsePositiveInteger(String(o.killEvery), '--kill-every'),
    workerTtl: parsePositiveInteger(String(o.workerTtl), '--worker-ttl'),
    jobSeconds: parsePositiveInteger(String(o.jobSeconds), '--job-seconds'),
    drain: parsePositiveInteger(String(o.drain), '--drain'),
    kind: kind as ChaosOptions['kind'],
    image: String(o.image),
    keep: o.keep === true,
    tls: o.tls === true,
  };
}

function reportCommand(port: number, jobSeconds: number): string {
  const say = (what: string) => `echo "${what} $TITAN_JOB_ID $TITAN_ATTEMPT $TITAN_NODE_ID" | busybox nc -w 2 127.0.0.1 ${port}`;
  return `${say('start')}; sleep ${jobSeconds}; ${say('done')}`;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await sleep(50);
  }
  return false;
}

async function main(): Promise<void> {
  const options = parseOptions();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-chaos-'));
  const docker = options.kind === 'shell' ? { ok: false } : await probeDocker();
  if (options.kind === 'docker' && !docker.ok) throw new Error('--kind docker: no Docker engine answers (DOCKER_HOST)');
  const kind = docker.ok ? 'docker' : 'shell';
  say(`${options.jobs} ${kind} jobs, ${options.workers} workers, 2 masters, ${options.duration}s${options.tls ? ', etcd with TLS and auth' : ''}; logs in ${dir}`);

  const port = await anyFreePort();
  const workerIds = Array.from({ length: options.workers }, (_, i) => `chaos-w${i + 1}`);
  const pki = options.tls ? makeDevPki(path.join(dir, 'pki'), workerIds) : undefined;
  const etcd = await startEtcdServer(findEtcdBinary(), dir, port, process.env, pki?.etcd);
  const env = { TITAN_ENDPOINTS: `127.0.0.1:${port}`, TITAN_PREFIX: PREFIX, LOG_LEVEL: 'info' };
  if (pki) await setupLocalAuth(env.TITAN_ENDPOINTS, PREFIX, pki, workerIds);
  // With --tls each process is its own etcd user; this script reads and submits as root.
  const as = (user: string): NodeJS.ProcessEnv => ({ ...env, ...pki?.env(user) });
  const collector = await startCollector();
  const store = new Store({ ...resolveEtcdConnection({ endpoints: env.TITAN_ENDPOINTS, ...pki?.flags('root') }, {}), prefix: PREFIX });
  const masters = ['m1', 'm2'].map((id) => new ManagedProcess(id, path.join(DIST, 'cmd/master/main.js'), ['--id', id, '--lease-ttl', '2'], as('titan-master'), dir));
  const workers = workerIds.map((id) => {
    return new ManagedProcess(id, path.join(DIST, 'cmd/worker/main.js'), ['--node-id', id, '--state-dir', path.join(dir, id), '--ttl', String(options.workerTtl), '--network', 'host', '--docker', kind === 'docker' ? 'on' : 'off', '--executors', kind, '--cpu', '4', '--memory', '4Gi'], as(nodeUser(id)), dir);
  });
  const everyone = [...masters, ...workers];
  everyone.forEach((p) => p.start());

  const recoveries: number[] = [];
  const recovered = (victim: string, killedAt: number) => {
    const seconds = (Date.now() - killedAt) / 1000;
    recoveries.push(seconds);
    say(`${victim} recovered ${seconds.toFixed(2)}s after its kill`);
  };
  let kills = 0;
  try {
    await waitUntil(async () => (await store.listNodes()).items.length === options.workers && !!(await store.leaderTerm()), 30_000);

    const command = reportCommand(collector.port, options.jobSeconds);
    const spec = buildJobSpec(kind === 'docker' ? { image: options.image, cmd: command, cpu: '250m', memory: '32Mi', retries: 3 } : { shell: command, cpu: '250m', memory: '32Mi', retries: 3 });
    // Arrays and dependents go through the CLI's own submit path.
    const flags: SubmitFlags = { ...(kind === 'docker' ? { image: options.image, cmd: command } : { shell: command }), cpu: '250m', mem: '32Mi', retries: '3' };
    const cluster = new EtcdCluster(store);
    const jobIds: string[] = [];
    /** Every dependent, and the jobs it waits for (an array: its tasks). */
    const parents = new Map<string, string[]>();
    const started = Date.now();
    const submitWindowMs = (options.duration * 1000) / 2;
    const submitter = (async () => {
      // Jobs arrive over the first half of the run, so kills hit every stage of their lives.
      const waves = Math.max(1, Math.floor(submitWindowMs / 1000));
      let arrayTasks: string[] = [];
      let arrayId = '';
      for (let w = 0; w < waves; w++) {
        const count = Math.floor((options.jobs * (w + 1)) / waves) - Math.floor((options.jobs * w) / waves);
        const jobs: Job[] = Array.from({ length: count }, (_, i) => ({ ...spec, name: `chaos-${w}-${i}`, id: newJobId(), state: 'Pending', createdAt: Date.now(), attempt: 0 }));
        await store.createJobs(jobs);
        jobIds.push(...jobs.map((j) => j.id));
        if (w === 0) {
          const plan = planSubmission({ ...flags, name: 'chaos-array', array: `0-${options.arrayTasks - 1}%10` });
          arrayId = (await cluster.submitArray(plan)).id;
          arrayTasks = plan.jobs.map((j) => j.id);
          jobIds.push(...arrayTasks);
        }
        const dependents = Math.floor((options.dependents * (w + 1)) / waves) - Math.floor((options.dependents * w) / waves);
        for (let d = 0; d < dependents; d++) {
          // Every other dependent waits for the whole array; the rest for a plain job that may still be running.
          const onArray = (w + d) % 2 === 0;
          const parent = onArray ? arrayId : (jobs[d % Math.max(1, jobs.length)]?.id ?? jobIds[0]);
          const plan = planSubmission({ ...flags, name: `chaos-after-${w}-${d}`, after: [`${onArray ? 'ok' : 'any'}:${parent}`] });
          const [dependent] = plan.jobs;
          await store.createJobs([dependent]);
          jobIds.push(dependent.id);
          parents.set(dependent.id, onArray ? arrayTasks : [parent]);
        }
        await sleep(started + (w + 1) * 1000 - Date.now());
      }
    })();

    while (Date.now() - started < options.duration * 1000) {
      await sleep(options.killEvery * 1000);
      kills++;
      const killMaster = kills % 3 === 0;
      if (killMaster) {
        const leader = await store.getLeader();
        const victim = masters.find((m) => m.name === leader?.id) ?? masters[0];
        const killedAt = Date.now();
        await victim.kill();
        say(`killed leading master ${victim.name}`);
        const oldTerm = await store.leaderTerm();
        void waitUntil(async () => {
          const now = await store.leaderTerm();
          return now !== undefined && now !== oldTerm;
        }, 60_000).then((ok) => ok && recovered(victim.name, killedAt));
        await sleep(1000);
        await victim.restart();
        say(`restarted master ${victim.name}`);
      } else {
        const victim = workers[Math.floor(Math.random() * workers.length)];
        const killedAt = Date.now();
        await victim.kill();
        say(`killed worker ${victim.name}`);
        await sleep(1000);
        await victim.restart();
        say(`restarted worker ${victim.name}`);
        void waitUntil(async () => ((await store.getNode(victim.name))?.value.registeredAt ?? 0) > killedAt, 60_000).then(
          (ok) => ok && recovered(victim.name, killedAt),
        );
      }
    }
    await submitter;

    const finalJobs = async () => Promise.all(jobIds.map(async (id) => (await store.getJob(id))?.value));
    const finalStates = async () => (await finalJobs()).map((j) => j?.state);
    await waitUntil(async () => (await finalStates()).every((s) => s !== undefined && isFinal(s)), options.drain * 1000);
    await sleep(500); // the last "done" reports
    const jobs = await finalJobs();
    const states = jobs.map((j) => j?.state);
    // Why each job that did not succeed ended so: its reason and every attempt's, to read without the etcd data.
    for (const job of jobs) {
      if (!job || job.state === 'Succeeded') continue;
      say(`job ${job.id} ${job.state}: ${job.reason ?? ''}; attempts: ${(job.history ?? []).map((h) => `${h.attempt}@${h.node ?? '-'} ${h.failure ?? h.state}`).join(', ')}`);
    }
    const duplicates = duplicateRunJobs(collector.events);
    const early = earlyDependents(collector.events, parents);
    const result = {
      submitted: jobIds.length,
      arrayTasks: options.arrayTasks,
      dependents: parents.size,
      succeeded: states.filter((s) => s === 'Succeeded').length,
      failed: states.filter((s) => s === 'Failed' || s === 'Cancelled').length,
      lost: states.filter((s) => s === undefined || !isFinal(s)).length,
      duplicateRuns: duplicates.length,
      earlyDependents: early.length,
      maxRecoverySeconds: Number(Math.max(0, ...recoveries).toFixed(2)),
      kills,
      kind,
      ...(duplicates.length > 0 ? { duplicateJobIds: duplicates } : {}),
      ...(early.length > 0 ? { earlyDependentIds: early } : {}),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exitCode = result.lost === 0 && result.duplicateRuns === 0 && result.earlyDependents === 0 ? 0 : 1;
  } finally {
    await Promise.all(everyone.map((p) => p.kill('SIGTERM')));
    if (kind === 'docker') await removeChaosContainers(workers.map((w) => w.name));
    store.close();
    await collector.close();
    await etcd.stop();
    if (!options.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function removeChaosContainers(nodeIds: string[]): Promise<void> {
  const { docker } = dockerFromEnv();
  for (const node of nodeIds) {
    const containers = await docker.listContainers({ all: true, filters: { label: [`titan.node=${node}`] } });
    await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
