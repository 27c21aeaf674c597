import { randomBytes } from 'node:crypto';
import { records } from '../../pkg/store/index.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { pino } from 'pino';
import { Master, ReportFolder, resolveMasterConfig } from '../../internal/master/index.js';
import { resolveWorkerConfig, Worker, type WorkerConfig, type WorkerFlags } from '../../internal/worker/index.js';
import { buildJobSpec, DEFAULT_RETRY_POLICY, gangSpecs, newJobId, nodeOfAttempt, type Assignment, type Job, type JobSpec, type JobState, type LogEntry, type SubmitInput } from '../../pkg/model/index.js';
import { Store, type Versioned } from '../../pkg/store/index.js';

import { afterAll, afterEach, beforeAll } from 'vitest';
import { removeContainersByLabel, requireDocker } from '../harness/docker.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { randomPrefix } from '../harness/wait.js';

export { randomPrefix };

export function randomNodeId(): string {
  return `node-${randomBytes(3).toString('hex')}`;
}

export const testLogger = pino({ name: 'worker-test', level: process.env.LOG_LEVEL ?? 'warn' });

export interface TestWorker {
  worker: Worker;
  /** A separate client, as the master and CLI would have. */
  store: Store;
  config: WorkerConfig;
  /** Stops the worker and its runs, and removes its state dir. */
  stop(): Promise<void>;
}

/** A worker on its own random prefix and node id (Docker and shell jobs unless flags say otherwise), plus a store to drive it. */
export async function startTestWorker(
  endpoints: string,
  flags: WorkerFlags = {},
  overrides: Partial<WorkerConfig> = {},
): Promise<TestWorker> {
  const nodeId = randomNodeId();
  const config = {
    ...(await resolveWorkerConfig(
      {
        endpoints,
        prefix: randomPrefix(),
        nodeId,
        cpu: '8',
        memory: '16Gi',
        gpus: 'none',
        network: 'none',
        executors: 'docker,shell',
        ...flags,
        // Under the temporary directory, not the machine's /var/lib/titan; one per node id, as a restart needs; stop() removes it.
        stateDir: flags.stateDir ?? path.join(os.tmpdir(), `titan-test-worker-${flags.nodeId ?? nodeId}`),
      },
      {},
    )),
    ...overrides,
  };
  const worker = new Worker(config, testLogger);
  await worker.start();
  const store = new Store({ endpoints: [endpoints], prefix: config.prefix });
  const folder = await startReportFolder(store, config.nodeLostRetries);
  return {
    worker,
    store,
    config,
    async stop() {
      await worker.stop({ stopJobs: true });
      await folder.stop();
      store.close();
      fs.rmSync(config.stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * What the master does with what nodes report, without a scheduler: workers
 * only report, and this folds their reports into job states (as the leading
 * master's ReportFolder does), for tests that place jobs themselves.
 */
export async function startReportFolder(store: Store, nodeLostRetries = DEFAULT_RETRY_POLICY.nodeLostRetries): Promise<ReportFolder> {
  const folder = new ReportFolder(store, { ...DEFAULT_RETRY_POLICY, nodeLostRetries }, () => true, () => [], testLogger);
  await folder.start();
  return folder;
}

/** Spec fields `titan submit` sets from flags that SubmitInput does not carry here. */
export type JobExtras = Pick<Job, 'retries' | 'timeoutMs'>;

/** Writes a Pending job, as `titan submit` does. */
export async function submitJob(store: Store, input: SubmitInput, extras: Partial<JobExtras> = {}): Promise<Job> {
  const job: Job = { ...buildJobSpec(input), ...extras, id: newJobId(), state: 'Pending', createdAt: Date.now(), attempt: 0 };
  await store.createJobs([job]);
  return job;
}

/** The replicas of a gang, created in one transaction as `titan submit --replicas` does; rank 0's id is the gang's. */
export async function submitGang(store: Store, spec: JobSpec, replicas: number): Promise<Job[]> {
  const gangId = newJobId();
  const jobs: Job[] = gangSpecs(spec, gangId, { replicas, minAvailable: replicas }).map((s, rank) => ({
    ...s,
    id: rank === 0 ? gangId : newJobId(),
    state: 'Pending',
    createdAt: Date.now(),
    attempt: 0,
  }));
  await store.createJobs(jobs, { atomic: true });
  return jobs;
}

/** commitPlacements' result is a boolean or (newer store) an object with `succeeded`. */
function committed(result: unknown): boolean {
  return result === true || (typeof result === 'object' && result !== null && (result as { succeeded?: unknown }).succeeded === true);
}

/** Places Pending jobs on a node the way the master does: one txn per batch, fenced by the node registration. */
export async function placeJobs(store: Store, nodeId: string, jobIds: string[], gpuDevices: string[] = []): Promise<void> {
  const node = await store.get(store.keys.node(nodeId), records.node);
  if (!node) throw new Error(`node ${nodeId} is not registered`);
  for (let i = 0; i < jobIds.length; i += 25) {
    const placements = [];
    for (const id of jobIds.slice(i, i + 25)) {
      const job = await store.requireJob(id);
      const attempt = job.value.attempt + 1;
      const now = Date.now();
      const scheduled: Job = { ...job.value, state: 'Scheduled', node: nodeId, attempt, scheduledAt: now, gpuDevices };
      const assignment: Assignment = { jobId: id, nodeId, attempt, resources: job.value.resources, gpuDevices, assignedAt: now };
      placements.push({ job, scheduled, assignment, nodeCreateRevision: node.createRevision });
    }
    const result: unknown = await store.commitPlacements(placements);
    if (!committed(result)) throw new Error('placement did not commit');
  }
}

export async function submitAndPlace(
  store: Store,
  nodeId: string,
  input: SubmitInput,
  gpuDevices: string[] = [],
  extras: Partial<JobExtras> = {},
): Promise<string> {
  const job = await submitJob(store, input, extras);
  await placeJobs(store, nodeId, [job.id], gpuDevices);
  return job.id;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export function waitForState(store: Store, jobId: string, states: JobState[], timeoutMs?: number): Promise<Job> {
  return waitFor(
    `job ${jobId} to be ${states.join('/')}`,
    async () => {
      const job = await store.getJob(jobId);
      return job && states.includes(job.value.state) ? job.value : undefined;
    },
    timeoutMs,
  );
}

export interface StoredLogs {
  entries: LogEntry[];
  stdout: string;
  stderr: string;
  seqs: number[];
}

export async function readLogs(store: Store, jobId: string, attempt = 1): Promise<StoredLogs> {
  const job = await store.requireJob(jobId);
  const { chunks } = await store.readLogChunks(nodeOfAttempt(job.value, attempt) ?? '', jobId, attempt);
  const entries = chunks.flatMap((c) => c.entries);
  const of = (stream: string): string => entries.filter((e) => e.stream === stream).map((e) => e.data).join('');
  return { entries, stdout: of('stdout'), stderr: of('stderr'), seqs: chunks.map((c) => c.seq) };
}

export function assignmentOf(store: Store, nodeId: string, jobId: string): Promise<Versioned<Assignment> | undefined> {
  return store.get(store.keys.assignment(nodeId, jobId), records.assignment);
}

/** The containers Docker has for one job (all attempts, any state). */
export function containersOf(docker: Docker, jobId: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`titan.job=${jobId}`] } });
}

/** Waits until a job's container of that attempt is running. */
export function runningContainer(docker: Docker, jobId: string, attempt = 1, timeoutMs?: number): Promise<Docker.ContainerInfo> {
  return waitFor(
    `a running container of ${jobId} attempt ${attempt}`,
    async () => (await containersOf(docker, jobId)).find((c) => c.Labels['titan.attempt'] === String(attempt) && c.State === 'running'),
    timeoutMs,
  );
}

/** An in-process master on the same prefix: places jobs, honours retryAt, requeues attempts of lost nodes. */
export async function startMaster(endpoints: string, prefix: string): Promise<Master> {
  const master = new Master(resolveMasterConfig({ endpoints, prefix, leaseTtl: '2' }, {}), pino({ name: 'master-test', level: process.env.LOG_LEVEL ?? 'warn' }));
  await master.start();
  return master;
}

/** A suite with its own etcd and one in-process Docker worker at a time, whose containers go after each test. */
export interface DockerWorkerSuite {
  readonly etcd: EtcdServer;
  readonly docker: Docker;
  start(overrides?: Partial<WorkerConfig>): Promise<TestWorker>;
  /** A master the test started (on the worker's prefix), stopped after the test before the worker. */
  adopt(master: Master): Master;
}

/** Registers the suite's hooks; call inside describe(). */
export function dockerWorkerSuite(name: string): DockerWorkerSuite {
  let etcd: EtcdServer | undefined;
  let docker: Docker | undefined;
  let current: TestWorker | undefined;
  const masters: Master[] = [];
  beforeAll(async () => {
    docker = await requireDocker();
    etcd = await startEtcd({ name });
  });
  // Stopping a worker stops and removes its containers: minutes for 50 on a loaded engine.
  afterEach(async () => {
    for (const master of masters.splice(0)) await master.stop();
    if (!current) return;
    await current.stop();
    if (docker) await removeContainersByLabel(docker, `titan.node=${current.worker.nodeId}`);
    current = undefined;
  }, 300_000);
  afterAll(async () => {
    await etcd?.stop();
  });
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not started yet`);
    return value;
  };
  return {
    get etcd() {
      return need(etcd, 'etcd');
    },
    get docker() {
      return need(docker, 'docker');
    },
    async start(overrides: Partial<WorkerConfig> = {}) {
      current = await startTestWorker(need(etcd, 'etcd').endpoints, { docker: 'on' }, overrides);
      return current;
    },
    adopt(master: Master) {
      masters.push(master);
      return master;
    },
  };
}

/** One in-process worker (shell jobs) and, once started, a master on its prefix. */
export interface SmallCluster {
  worker: TestWorker;
  store: Store;
  /** The etcd it runs on (for the CLI). */
  endpoints: string;
  startMaster(): Promise<Master>;
  /** Stops the master (a new one may be started). */
  stopMaster(): Promise<void>;
}

/** A suite with its own etcd and one small cluster at a time, stopped after each test. Call inside describe(). */
export function clusterSuite(name: string): { start(flags: WorkerFlags): Promise<SmallCluster> } {
  let etcd: EtcdServer | undefined;
  let worker: TestWorker | undefined;
  let master: Master | undefined;
  beforeAll(async () => {
    etcd = await startEtcd({ name });
  });
  afterEach(async () => {
    await master?.stop();
    await worker?.stop();
    master = undefined;
    worker = undefined;
  });
  afterAll(async () => {
    await etcd?.stop();
  });
  return {
    async start(flags) {
      if (!etcd) throw new Error('etcd is not started yet');
      const endpoints = etcd.endpoints;
      const started = await startTestWorker(endpoints, { docker: 'off', ...flags });
      worker = started;
      return {
        worker: started,
        store: started.store,
        endpoints,
        startMaster: async () => (master = await startMaster(endpoints, started.config.prefix)),
        stopMaster: async () => {
          await master?.stop();
          master = undefined;
        },
      };
    },
  };
}
