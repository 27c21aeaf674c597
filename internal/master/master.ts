import type { Logger } from 'pino';
import os from 'node:os';
import { DEFAULT_RETRY_POLICY, type Assignment, type NodeInfo, type Queue, type RetryPolicy } from '../../pkg/model/index.js';
import { checkLayout, isTransientStoreError, records, startInformer, Store, type CorruptRecordError, type Informer, type InformerOptions, type WatchEvent } from '../../pkg/store/index.js';
import { createPolicy, planEvictions, type Policy } from '../scheduler/index.js';
import { ClusterState, type StateChange } from './cluster-state.js';
import { jobsInformerOptions } from './pending-job.js';
import { Dependencies } from './dependencies.js';
import { Committer } from './committer.js';
import { CountedStore } from './counted-store.js';
import { MasterMetrics } from './metrics.js';
import { isRetryAborted, retryCall } from '../../pkg/concurrency/call-retry.js';
import type { MasterConfig } from './config.js';
import { Leadership } from './leadership.js';
import { requeueLostAttempts } from './node-loss.js';
import { planMasterPass, requestOf, type Plan } from './plan.js';
import { Compactor, lowestActiveDelivery, minRevision } from './compaction.js';
import { Retention } from './retention.js';
import { failCorruptJobs } from './corrupt-jobs.js';
import { PassLoop } from './pass-loop.js';
import { ReportFolder } from './report-folder.js';
import { StartDeadline } from './start-deadline.js';
import { StorageWatch } from './storage-watch.js';

/** After a pass lost races, wait for the watch to bring the newer state before trying again. */
const RETRY_AFTER_CONFLICT_MS = 25;

/**
 * The master: follows nodes, assignments and jobs in etcd into one in-memory
 * snapshot. Every master keeps the snapshot warm; only the elected leader
 * schedules. Whenever something could change a placement (a job arrives,
 * capacity frees up, a node joins or leaves) the leader runs a pass and
 * commits it, fenced by its leadership term.
 */
export class Master {
  readonly state = new ClusterState((job) => this.policy.observe(requestOf(job)));
  readonly policy: Policy;
  readonly leadership: Leadership;
  private readonly store: Store;
  private readonly committer: Committer;
  private readonly retryPolicy: RetryPolicy;
  readonly retention: Retention;
  /** Folds what nodes report of their attempts into the jobs (nodes never write job records). */
  readonly reports: ReportFolder;
  readonly compactor: Compactor;
  readonly startDeadline: StartDeadline;
  readonly storageWatch: StorageWatch;
  /** Reads the jobs pending jobs wait for, and (the leader) cancels those whose conditions can never hold. */
  private readonly dependencies: Dependencies;
  /** Prometheus metrics (own registry); the API listener serves them at /metrics. */
  readonly metrics: MasterMetrics;
  private informers: Informer[] = [];
  /** Queues by name, from their informer. */
  private readonly queues = new Map<string, Queue>();
  private sweepRequested = false;
  /** The jobs informer quarantined job records: the leader fails those jobs (reason Corrupt). */
  private corruptJobsSeen = false;
  private jobsInformer: Informer | undefined;
  private readonly passes = new PassLoop(
    () => this.passOnce(),
    () => this.synced && !this.stopped && this.isLeader(),
  );
  private synced = false;
  private stopped = false;
  /** Aborted by stop(): ends a wait for etcd at once. */
  private readonly stopping = new AbortController();

  constructor(
    readonly config: MasterConfig,
    private readonly logger: Logger,
  ) {
    this.policy = createPolicy(config.policy);
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, nodeLostRetries: config.nodeLostRetries };
    this.metrics = new MasterMetrics({
      state: this.state,
      queues: () => [...this.queues.values()],
      isRunning: (nodeId, jobId) => this.reports.isRunning(nodeId, jobId),
      isLeader: () => this.isLeader(),
      isSynced: () => this.isSynced(),
      watchCallbackFailures: () => this.informers.reduce((sum, i) => sum + i.callbackFailures(), 0),
    });
    this.store = new CountedStore({ ...config.etcd, prefix: config.prefix }, (result) => this.metrics.transaction(result));
    this.leadership = new Leadership(this.store, { id: config.id, hostname: os.hostname(), since: Date.now(), policy: this.policy.name }, config.leaseTtlSeconds, logger);
    this.committer = new Committer(
      this.store,
      this.state,
      logger,
      config.commitBatch,
      config.commitConcurrency,
      () => this.leadership.guard(),
      { onConflict: () => void this.afterConflict(), onCommitted: (batch) => this.metrics.placed(batch) },
    );
    this.reports = new ReportFolder(this.store, this.retryPolicy, () => this.isLeader(), () => this.leadership.guard(), logger);
    this.retention = new Retention(
      this.store,
      { retainMs: config.retainMs, retainJobs: config.retainJobs },
      config.retentionIntervalMs,
      () => this.isLeader(),
      () => this.leadership.guard(),
      logger,
      // The jobs pending jobs wait for are kept: a master started later must still find how they ended.
      (id) => this.state.dependencies.isParent(id),
    );
    this.dependencies = new Dependencies(this.store, this.state, () => this.leadership.guard(), () => this.isLeader(), (change) => this.onChange(change, false), logger);
    this.startDeadline = new StartDeadline(
      this.store,
      this.state,
      config.startDeadlineMs,
      () => this.isLeader(),
      () => this.leadership.guard(),
      this.retryPolicy,
      logger,
    );
    this.storageWatch = new StorageWatch(
      this.store,
      config.etcdQuotaBytes,
      config.storageCheckMs,
      () => this.isLeader(),
      () => this.leadership.guard(),
      (full) => this.retention.setPressure(full),
      logger,
    );
    this.compactor = new Compactor(
      this.store,
      config.compactHistoryMs,
      () => this.isLeader(),
      // Never past what this master's own watches delivered or its paged reads read at: a busy master must not cut itself off.
      (now) => minRevision(lowestActiveDelivery(this.informers.map((i) => i.delivered()), now, config.compactHistoryMs), this.store.oldestHeldRevision()),
      logger,
    );
  }

  isLeader(): boolean {
    return this.leadership.isLeader();
  }

  /** The informers delivered their first lists: this master's snapshot is the cluster's. */
  isSynced(): boolean {
    return this.synced;
  }

  async start(): Promise<void> {
    await this.checkLayout();
    const { keys } = this.store;
    const follow = <T>(
      prefix: string,
      name: string,
      reset: (items: never[]) => StateChange,
      apply: (events: never[]) => StateChange,
      options: InformerOptions<T>,
    ) =>
      startInformer<T>(
        this.store,
        prefix,
        {
          reset: (items) => this.onChange(reset(items as never[]), true),
          events: (events) => this.onChange(apply(events as never[]), false),
          error: (err) => this.logger.warn({ err, watch: name }, 'watch failed; re-listing'),
          corrupt: (err) => this.onCorrupt(name, err),
        },
        options,
      );
    const { dependencies } = this.state;
    const isParentKey = (key: string): boolean => dependencies.hasParents() && dependencies.isParent(key.slice(key.lastIndexOf('/') + 1));
    const jobs = follow(keys.collection('jobs'), 'jobs', (i) => this.state.resetJobs(i), (e) => this.state.applyJobEvents(e), jobsInformerOptions(isParentKey));
    this.jobsInformer = jobs;
    this.informers = [
      follow<NodeInfo>(keys.collection('nodes'), 'nodes', (i) => this.state.resetNodes(i), (e) => this.state.applyNodeEvents(e), { decode: records.node.decode }),
      follow<Assignment>(keys.collection('assign'), 'assignments', (i) => this.state.resetAssignments(i), (e) => this.onAssignmentEvents(e), { decode: records.assignment.decode }),
      // Pending jobs only, compact (jobsInformerOptions): of the other jobs the master holds at most the state, of those pending jobs wait for.
      jobs,
      follow<Queue>(keys.collection('queues'), 'queues', (i) => this.resetQueues(i), (e) => this.applyQueueEvents(e), { decode: records.queue.decode }),
    ];
    await Promise.all(this.informers.map((i) => i.ready));
    await this.reports.start();
    this.synced = true;
    this.leadership.on('elected', () => {
      // Holds of an earlier term of this master's are stale: another leader may have placed or evicted since.
      this.state.evictionHolds.clear();
      this.sweepRequested = true;
      this.corruptJobsSeen = true;
      this.reports.foldAll().catch((err: unknown) => this.logger.warn({ err }, 'could not list node reports to fold; they are folded as they change'));
      this.requestPass();
    });
    this.leadership.start();
    this.retention.start();
    // Off: etcd's own --auto-compaction, or an operator, keeps its history.
    if (this.config.compactHistoryMs > 0) this.compactor.start();
    this.startDeadline.start();
    this.storageWatch.start();
    this.logger.info(
      { id: this.config.id, policy: this.policy.name, nodes: this.state.nodes.size, pending: this.state.pending.size },
      `master started with placement policy ${this.policy.name}; campaigning for leadership`,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await this.retention.stop();
    await this.compactor.stop();
    await this.startDeadline.stop();
    await this.storageWatch.stop();
    await this.passes.stop();
    await this.dependencies.stop();
    await this.committer.idle();
    await this.reports.stop();
    await this.leadership.stop();
    await Promise.all(this.informers.map((i) => i.stop()));
    this.store.close();
    this.logger.info('master stopped');
  }

  /**
   * Works only on data in this build's layout (and records it on a fresh
   * prefix); a mismatch ends the start. An etcd that is down is waited for.
   */
  private async checkLayout(): Promise<void> {
    try {
      await retryCall(() => checkLayout(this.store, 'titan-master', { record: true }), {
        retryable: isTransientStoreError,
        initialDelayMs: 250,
        maxDelayMs: 2000,
        signal: this.stopping.signal,
        onRetry: (err, failures) => {
          if (failures === 1) this.logger.warn({ err }, 'waiting for etcd');
        },
      });
    } catch (err) {
      if (!isRetryAborted(err)) throw err;
    }
  }

  private resetQueues(items: { value: Queue }[]): StateChange {
    this.queues.clear();
    for (const item of items) this.queues.set(item.value.name, item.value);
    return { capacityChanged: true, newPending: false };
  }

  private applyQueueEvents(events: { type: string; key: string; value?: Queue }[]): StateChange {
    for (const e of events) {
      const name = this.store.keys.idOf(e.key);
      if (e.type === 'put' && e.value) this.queues.set(name, e.value);
      else this.queues.delete(name);
    }
    return { capacityChanged: true, newPending: false };
  }

  /**
   * A gang replica that ended Failed (no retries left) fails the gang: its
   * other replicas are cancelled, running or waiting. One read per ended
   * replica attempt; only gangs pay it.
   */
  private async failGangs(): Promise<void> {
    const ended = this.state.endedReplicas.splice(0);
    for (const { jobId, gang } of ended) {
      const job = await this.store.getJob(jobId);
      if (job?.value.state !== 'Failed') continue;
      const why = `gang failed: replica ${job.value.gang?.rank ?? '?'} failed (${job.value.reason ?? 'no reason'})`;
      const siblings = [...this.state.gangAllocations(gang).map((a) => a.jobId), ...this.state.pendingReplicas(gang).map((j) => j.id)];
      for (const id of siblings) {
        if (id === jobId) continue;
        await this.store.cancelJob(id, this.config.evictGraceMs, Date.now(), why).catch((err: Error) => {
          this.logger.debug({ job: id, err }, 'gang sibling not cancelled');
        });
      }
      if (siblings.length > 0) this.logger.info({ gang, failed: jobId, cancelled: siblings.length }, 'gang failed: cancelling its other replicas');
    }
  }

  /**
   * A record the informers could not read is skipped (logged once per
   * version); every master logs it, the leader also fails corrupt jobs.
   */
  private onCorrupt(watch: string, err: CorruptRecordError): void {
    this.logger.warn({ key: err.key, why: err.why, watch }, 'quarantined a corrupt record: skipped');
    if (watch === 'jobs') {
      this.corruptJobsSeen = true;
      this.requestPass();
    }
  }

  private onChange(change: StateChange, reset: boolean): void {
    // Only the leader acts on ended gang replicas; a follower's list would just grow.
    if (!this.isLeader()) this.state.endedReplicas.length = 0;
    // Every master reads the jobs new dependents wait for: its snapshot stays the cluster's.
    if (!this.stopped) this.dependencies.readParents();
    if (change.nodesLeft || reset) this.sweepRequested = true;
    if (change.capacityChanged || change.newPending || change.nodesLeft || reset) this.requestPass();
  }

  /** The folder first: an assignment as placed spares its attempt's first fold a read. */
  private onAssignmentEvents(events: WatchEvent<Assignment>[]): StateChange {
    this.reports.noteAssignments(events);
    return this.state.applyAssignmentEvents(events);
  }

  private requestPass(): void {
    this.passes.request();
  }

  /** One pass and what goes before it; true when its plan was cut short (more to place at once). */
  private async passOnce(): Promise<boolean> {
    try {
      if (this.sweepRequested) {
        this.sweepRequested = false;
        await requeueLostAttempts(this.store, this.state, () => this.leadership.guard(), this.retryPolicy, this.logger);
      }
      if (this.state.endedReplicas.length > 0) await this.failGangs();
      // Cancels lost to a race are tried again soon: no event may come to ask for it.
      if (this.state.dependencies.doomed.size > 0 && !(await this.dependencies.cancelDoomed(this.committer.busyJobs))) this.retryLater(1000);
      if (this.corruptJobsSeen) {
        this.corruptJobsSeen = false;
        const quarantined = this.jobsInformer?.quarantined();
        if (quarantined && quarantined.size > 0) {
          await failCorruptJobs(this.store, quarantined, (id) => this.state.nodeOf(id), () => this.leadership.guard(), this.logger);
        }
      }
      return await this.runPass();
    } catch (err) {
      this.logger.error({ err }, 'scheduling pass failed');
      this.sweepRequested = true;
      this.retryLater(1000);
      return false;
    }
  }

  /** Plans and hands the placements to the commit pipeline; planning never waits for etcd. True: the plan was cut short. */
  private async runPass(): Promise<boolean> {
    const started = performance.now();
    const now = Date.now();
    const queues = [...this.queues.values()];
    const plan = planMasterPass(this.state, this.policy, this.committer.busyJobs, now, queues, this.config.sampleNodes);
    this.metrics.observePass((performance.now() - started) / 1000);
    if (plan.nextPassAt !== undefined) this.retryLater(plan.nextPassAt - now);
    this.committer.enqueue(plan.placements);
    this.committer.writeReasons(plan.reasonUpdates);
    await this.restartGangs(plan, now);
    await this.preemptFor(plan, queues, now);
    if (plan.placements.length > 0 || plan.reasonUpdates.length > 0) {
      this.logger.debug(
        { planned: plan.placements.length, reasons: plan.reasonUpdates.length, pending: plan.stillPending, ms: Math.round(performance.now() - started) },
        'scheduling pass',
      );
    }
    // Let the commits just queued go out before planning the next slice.
    if (plan.truncated) await new Promise((resolve) => setImmediate(resolve));
    return plan.truncated;
  }

  /** Stops the running siblings of failed gang replicas (evicted back to Pending): the gang is placed again as a whole. */
  private async restartGangs(plan: Plan, now: number): Promise<void> {
    if (plan.gangRestarts.length === 0) return;
    const result = await this.store.evictJobs(plan.gangRestarts, this.config.evictGraceMs, this.leadership.guard(), now);
    if (!result.succeeded) return;
    this.state.markEvicting(result.evicted);
    this.metrics.evicted('gang-restart', result.evicted.length);
    this.logger.info({ replicas: result.evicted }, 'restarting gangs: a replica failed');
  }

  /**
   * Jobs that fit nowhere may get room by eviction (planEvictions in
   * internal/scheduler/evictions.ts, after the gang restarts above are
   * marked); the set is committed in one transaction fenced by the
   * leadership term. Evicted jobs come back Pending once their worker has
   * stopped them.
   */
  private async preemptFor(plan: Plan, queues: readonly Queue[], now: number): Promise<void> {
    const planned = planEvictions(this.state, plan, queues, now, { defaultMinRuntimeMs: this.config.minRuntimeMs });
    if (!planned) return;
    const { victims, modeOf, preemptors } = planned;
    const result = await this.store.evictJobs(victims, this.config.evictGraceMs, this.leadership.guard(), now);
    if (!result.succeeded) return;
    this.state.markEvicting(result.evicted);
    const evicted = new Set(result.evicted);
    this.state.evictionHolds.add(planned, evicted, now, this.config.evictGraceMs);
    for (const mode of ['reclaim', 'preempt'] as const) this.metrics.evicted(mode, result.evicted.filter((id) => modeOf.get(id) === mode).length);
    for (const p of preemptors) if (p.victims.some((id) => evicted.has(id))) this.metrics.preempted(p.queue);
    this.logger.info({ evicted: result.evicted.length, reasons: [...new Set(victims.map((v) => v.reason))] }, 'evicting jobs to make room');
  }

  private async afterConflict(): Promise<void> {
    try {
      await this.checkTerm();
    } catch (err) {
      this.logger.warn({ err }, 'could not check the leadership term');
    }
    this.retryLater(RETRY_AFTER_CONFLICT_MS);
  }

  /** A conflict may mean our term ended: if the leader key is not ours, stop leading. */
  private async checkTerm(): Promise<void> {
    const term = await this.store.leaderTerm();
    const [guard] = this.leadership.guard();
    if (term !== String(guard.create_revision)) this.leadership.lostTerm();
  }

  private retryLater(ms: number): void {
    this.passes.requestIn(ms);
  }
}
