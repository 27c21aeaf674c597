import type { AddressInfo } from 'node:net';
import type { Logger } from '../../pkg/log/logger.js';
import { addResources, DEFAULT_RETRY_POLICY, MILLI_PER_GPU, TitanError, ZERO_RESOURCES, type Assignment, type ExecutorKind, type NodeInfo, type Resources, type RetryPolicy } from '../../pkg/model/index.js';
import { Store, checkLayout, records, startInformer, type Informer, type Versioned, type WatchEvent } from '../../pkg/store/index.js';
import type { WorkerConfig } from './config.js';
import { DockerExecutor } from './docker-executor.js';
import { connectDocker } from './docker-detect.js';
import type { Executor } from './executor.js';
import { JobRun } from './job-run.js';
import { TAKEN_GRACE_MS } from './run-control.js';
import { WorkerMetrics } from './metrics.js';
import { serveMetrics, type MetricsServer } from './metrics-server.js';
import { sweepLeftovers } from './leftovers.js';
import { Registration, type RegistrationEvent } from './registration.js';
import { RunJournal } from './run-journal.js';
import { ReportBatcher } from './report-batcher.js';
import { ShellExecutor } from './shell-executor.js';
import { titanVersion } from './version.js';

/** Grace given to runs when the worker stops with stopJobs. */
const STOP_JOBS_GRACE_MS = 2000;

type Phase = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * A node of the cluster: registers itself under a lease, follows the
 * assignments the master gives it, and runs each one (JobRun) to its final
 * state. One failing job never affects another or the worker.
 */
export class Worker {
  readonly nodeId: string;
  private readonly config: WorkerConfig;
  private readonly logger: Logger;
  private phase: Phase = 'new';
  private store: Store | undefined;
  /** Claims and end reports of every run, batched (set with the store). */
  private reports: ReportBatcher | undefined;
  private registration: Registration | undefined;
  private informer: Informer | undefined;
  private stopping: Promise<void> | undefined;
  private keepaliveFailing = false;
  private readonly executors = new Map<ExecutorKind, Executor>();
  private docker: DockerExecutor | undefined;
  private readonly journal: RunJournal;
  /** NodeInfo.instance: kept in the state dir, so a restart takes its own registration over. */
  private instance = '';
  private readonly policy: RetryPolicy;
  /** The assignments etcd holds for this node, by job id (the informer's cache). */
  private readonly known = new Map<string, Versioned<Assignment>>();
  /** Runs of this process (started here, or re-attached from an earlier process), by job id. */
  private readonly runs = new Map<string, JobRun>();
  /** Assignments (by job id → createRevision) whose run ended here without releasing them: never rerun. */
  private readonly ended = new Map<string, string>();
  /**
   * Assignments (job id → createRevision; one placement transaction creates
   * many at one revision) this process saw created, by a watch event, and
   * has not run yet: no earlier process of this node can have reported on
   * them (one process per node), so their first run claims them without
   * reading for a report first.
   */
  private readonly createdSinceStart = new Map<string, string>();
  /** Prometheus metrics (own registry), served at --metrics-listen when set. */
  readonly metrics: WorkerMetrics;
  private metricsServer: MetricsServer | undefined;

  constructor(config: WorkerConfig, logger: Logger) {
    this.config = config;
    this.nodeId = config.nodeId;
    this.logger = logger.child({ node: config.nodeId });
    this.journal = new RunJournal(config.stateDir, this.logger);
    this.policy = { ...DEFAULT_RETRY_POLICY, nodeLostRetries: config.nodeLostRetries };
    this.metrics = new WorkerMetrics({
      nodeId: this.nodeId,
      capacity: () => this.capacity(),
      allocated: () => [...this.known.values()].reduce<Resources>((sum, a) => addResources(sum, a.value.resources), { ...ZERO_RESOURCES }),
      liveRuns: () => [...this.runs.values()].flatMap((run) => run.liveExecutor ?? []),
      registered: () => this.registeredProblem() === undefined,
      watchCallbackFailures: () => this.informer?.callbackFailures() ?? 0,
    });
  }

  /** Where /metrics is served, once start() resolved (undefined: --metrics-listen is not set). */
  get metricsAddress(): AddressInfo | undefined {
    return this.metricsServer?.address;
  }

  private capacity(): Resources {
    return { cpu: this.config.cpu, memory: this.config.memory, gpuMilli: this.config.gpus.length * MILLI_PER_GPU };
  }

  /** Why the node cannot claim work now (/healthz), or undefined when it can. */
  private registeredProblem(): string | undefined {
    if (this.phase !== 'running') return `worker is ${this.phase}`;
    if (!this.registration?.isHealthy()) return 'node registration lease is not healthy (etcd unreachable?)';
    return undefined;
  }

  /** Kinds of jobs this node runs; known once start() resolved. */
  get executorKinds(): ExecutorKind[] {
    return [...this.executors.keys()];
  }

  async start(): Promise<void> {
    if (this.phase !== 'new') throw new Error(`worker already ${this.phase}`);
    this.phase = 'starting';
    try {
      await this.startParts();
    } catch (err) {
      this.store?.close();
      await this.metricsServer?.close();
      this.phase = 'stopped';
      throw err;
    }
  }

  private async startParts(): Promise<void> {
    this.journal.open();
    this.instance = this.journal.instanceId();
    const { executors } = this.config;
    const docker = executors.includes('docker') ? await connectDocker(this.config.docker, this.logger) : undefined;
    if (docker) {
      this.docker = new DockerExecutor(docker, { nodeId: this.nodeId, network: this.config.network, logger: this.logger, parallelStarts: this.config.parallelStarts, pullTimeoutMs: this.config.pullTimeoutMs, box: this.config.box });
      this.executors.set('docker', this.docker);
    }
    // Shell jobs run on the host, outside any container: only where the operator asked for them.
    if (executors.includes('shell')) this.executors.set('shell', new ShellExecutor({ user: this.config.shellUser }));
    if (this.executors.size === 0) {
      throw new TitanError('InvalidInput', '--executors: this node could run no job: Docker is off or unreachable and shell jobs are off (add shell to --executors)');
    }

    // Before the node registers: a listen address that is taken fails the start with nothing registered.
    if (this.config.metricsListen) {
      this.metricsServer = await serveMetrics(this.config.metricsListen, this.metrics.registry, () => this.registeredProblem());
      const { address, port } = this.metricsServer.address;
      this.logger.info({ address, port }, `serving metrics on http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`);
    }
    const store = new Store({ ...this.config.etcd, prefix: this.config.prefix });
    this.store = store;
    this.reports = new ReportBatcher(store);
    await checkLayout(store, 'titan-worker');
    const registration = new Registration({ store, describe: () => this.describe(), ttlSeconds: this.config.ttlSeconds, logger: this.logger });
    this.registration = registration;
    registration.on((event) => this.onRegistrationEvent(event));
    await registration.start();
    if (this.stopRequested()) return; // stop() came during start: it cleans up
    this.phase = 'running';
    this.informer = startInformer<Assignment>(store, store.keys.nodeAssignments(this.nodeId), {
      // A handler that throws is the informer's to survive: it reports it here (a WatchCallbackError with the key), counts it and re-lists.
      reset: (items) => this.onReset(items),
      events: (events) => this.onEvents(events),
      error: (err) => this.logger.warn({ err }, 'assignment watch failed; re-listing'),
      corrupt: (err) => this.logger.warn({ key: err.key, why: err.why }, 'quarantined a corrupt assignment: skipped, nothing of it runs'),
    }, { decode: records.assignment.decode });
    await this.informer.ready;
    // What an earlier process of this node left for attempts that are no longer ours goes now.
    void sweepLeftovers({ journal: this.journal, docker: this.docker, logger: this.logger }, (jobId, attempt) =>
      this.known.get(jobId)?.value.attempt === attempt,
    );
    this.logger.info(
      { executors: this.executorKinds, cpu: this.config.cpu, memory: this.config.memory, gpus: this.config.gpus.length, labels: this.config.labels },
      'worker registered',
    );
  }

  /**
   * stopJobs: stop every run (2 s grace), record it, then revoke the lease so
   * the node vanishes at once. Otherwise runs keep going unattended and the
   * lease lapses on its own — unless a worker with the same node id starts
   * within the TTL: it keeps the registration and re-attaches to the runs.
   */
  stop(options: { stopJobs?: boolean } = {}): Promise<void> {
    this.stopping ??= this.shutdown(options.stopJobs === true);
    return this.stopping;
  }

  /** A method, not a field read, so TypeScript does not narrow the phase across awaits. */
  private stopRequested(): boolean {
    return this.stopping !== undefined;
  }

  private async shutdown(stopJobs: boolean): Promise<void> {
    const wasRunning = this.phase === 'running';
    this.phase = 'stopping';
    await this.informer?.stop().catch((err: unknown) => this.logger.warn({ err }, 'stopping the watch failed'));
    const runs = [...this.runs.values()];
    if (stopJobs) {
      for (const run of runs) run.requestStop('worker', STOP_JOBS_GRACE_MS);
      await Promise.all(runs.map((run) => run.done));
    } else {
      for (const run of runs) run.detach();
    }
    try {
      await this.registration?.stop({ revoke: stopJobs });
    } catch (err) {
      this.logger.warn({ err }, 'could not revoke the lease; the node disappears when it expires');
    }
    this.store?.close();
    this.journal.close();
    await this.metricsServer?.close();
    this.phase = 'stopped';
    if (wasRunning) this.logger.info({ stopJobs, runs: runs.length }, 'worker stopped');
  }

  private describe(): NodeInfo {
    const { config } = this;
    return {
      id: this.nodeId,
      hostname: config.hostname,
      capacity: this.capacity(),
      gpus: config.gpus,
      labels: config.labels,
      executors: this.executorKinds,
      registeredAt: Date.now(),
      version: titanVersion(),
      instance: this.instance,
      advertiseAddr: config.advertiseAddr,
      portRange: config.portRange,
    };
  }

  private onRegistrationEvent(event: RegistrationEvent): void {
    switch (event.type) {
      case 'registered':
        this.keepaliveFailing = false;
        this.logger.info({ lease: event.leaseId }, 'node registered');
        this.reconcile();
        break;
      case 'keepaliveSucceeded':
        if (this.keepaliveFailing) this.logger.info('lease keepalive works again');
        this.keepaliveFailing = false;
        this.reconcile();
        break;
      case 'keepaliveFailed':
        // etcd3 retries every 100 ms while etcd is away: say it once, not ten times a second.
        if (this.keepaliveFailing) this.logger.debug({ err: event.error }, 'lease keepalive failed');
        else this.logger.warn({ err: event.error }, 'lease keepalive failed; retrying');
        this.keepaliveFailing = true;
        break;
      case 'unhealthy':
        this.fenceRuns(event.sinceKeepaliveMs);
        break;
      case 'lost':
        this.logger.warn({ err: event.error }, 'lease lost: registering again; no new work until then');
        this.fenceRuns(Date.now() - (this.registration?.lastKeepaliveAt ?? 0));
        break;
      case 'retryFailed':
        this.logger.warn({ err: event.error, retryInMs: event.delayMs }, 'registering again failed');
        break;
      case 'stopped':
        break;
    }
  }

  private onReset(items: Versioned<Assignment>[]): void {
    this.known.clear();
    this.createdSinceStart.clear();
    for (const item of items) this.known.set(item.value.jobId, item);
    // A deletion missed while the watch was down still means "taken away".
    for (const run of this.runs.values()) {
      const current = this.known.get(run.jobId);
      if (current?.createRevision !== run.createRevision) {
        if (!run.releasing) this.takeAway(run);
      } else {
        this.applyStopRequests(run, current.value);
      }
    }
    for (const [jobId, revision] of this.ended) {
      if (this.known.get(jobId)?.createRevision !== revision) this.ended.delete(jobId);
    }
    this.reconcile();
  }

  private onEvents(events: WatchEvent<Assignment>[]): void {
    for (const event of events) {
      const jobId = this.store?.keys.parseAssignment(event.key).jobId;
      if (jobId === undefined) continue;
      const run = this.runs.get(jobId);
      if (event.type === 'delete' || event.value === undefined) {
        this.createdSinceStart.delete(jobId);
        this.known.delete(jobId);
        this.ended.delete(jobId);
        if (run && !run.releasing) this.takeAway(run);
        continue;
      }
      const assignment: Versioned<Assignment> = {
        key: event.key,
        value: event.value,
        modRevision: event.modRevision,
        createRevision: event.createRevision,
      };
      if (assignment.createRevision === assignment.modRevision) this.createdSinceStart.set(jobId, assignment.createRevision);
      this.known.set(jobId, assignment);
      if (run && run.createRevision !== assignment.createRevision) this.takeAway(run);
      else if (run) this.applyStopRequests(run, assignment.value);
    }
    this.reconcile();
  }

  /** A cancel or an eviction the master or CLI put on a run's assignment; each is acted on once. */
  private applyStopRequests(run: JobRun, assignment: Assignment): void {
    if (assignment.cancel) run.requestStop('cancel', assignment.cancel.graceMs);
    if (assignment.evict) run.requestEvict(assignment.evict.reason, assignment.evict.graceMs);
  }

  /**
   * Without keepalives the lease may lapse any moment, and then the master
   * places this node's attempts elsewhere: kill every run now (no grace) so
   * no attempt ever runs twice. reconcile() claims nothing new meanwhile; the
   * runs record their attempts as lost once etcd answers again.
   */
  private fenceRuns(sinceKeepaliveMs: number): void {
    const live = [...this.runs.values()].filter((run) => !run.releasing);
    const fields = { sinceKeepaliveMs, runs: live.length, ttlSeconds: this.config.ttlSeconds };
    const message = 'no lease keepalive for too long: killing every run and claiming no new work until etcd answers';
    if (live.length > 0) this.logger.warn(fields, message);
    else this.logger.debug(fields, message);
    for (const run of live) run.fence();
  }

  private takeAway(run: JobRun): void {
    this.logger.info({ job: run.jobId, attempt: run.attempt }, 'assignment taken from this node; stopping its run');
    run.requestStop('taken', TAKEN_GRACE_MS);
  }

  /** Starts every known assignment that has no run here yet, while the lease is healthy. */
  private reconcile(): void {
    if (this.phase !== 'running' || !this.store) return;
    let waiting = 0;
    for (const [jobId, assignment] of this.known) {
      const run = this.runs.get(jobId);
      if (run && run.createRevision === assignment.createRevision) continue;
      if (this.ended.get(jobId) === assignment.createRevision) continue;
      // Claiming work on a lease that may lapse risks two nodes running one job.
      if (!this.registration?.isHealthy()) {
        waiting++;
        continue;
      }
      this.startRun(assignment);
    }
    if (waiting > 0) this.logger.debug({ waiting }, 'lease not healthy; holding back new assignments');
  }

  private startRun(assignment: Versioned<Assignment>): void {
    if (!this.store || !this.reports) return;
    const unreported = this.createdSinceStart.get(assignment.value.jobId) === assignment.createRevision;
    this.createdSinceStart.delete(assignment.value.jobId);
    const run = new JobRun(
      { store: this.store, reports: this.reports, executors: this.executors, journal: this.journal, policy: this.policy, config: this.config, logger: this.logger, metrics: this.metrics },
      assignment,
      { unreported },
    );
    const { jobId } = run;
    this.runs.set(jobId, run);
    void run.done.then(() => {
      if (this.runs.get(jobId) === run) this.runs.delete(jobId);
      // Still assigned after the run ended (fenced, or not ours to run): do not start it again.
      // A retryable run (its claim or end could not be written) gets a new JobRun, which finds the journal.
      if (!run.retryable && this.known.get(jobId)?.createRevision === run.createRevision) {
        this.ended.set(jobId, run.createRevision);
      }
    });
  }
}
