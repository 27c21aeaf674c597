import type { Logger } from 'pino';
import os from 'node:os';
import { DEFAULT_RETRY_POLICY, type Assignment, type Job, type NodeInfo, type RetryPolicy } from '../../pkg/model/index.js';
import { startInformer, Store, type Informer } from '../../pkg/store/index.js';
import { createPolicy, type Policy } from '../scheduler/index.js';
import { ClusterState, type StateChange } from './cluster-state.js';
import { Committer } from './committer.js';
import type { MasterConfig } from './config.js';
import { Leadership } from './leadership.js';
import { requeueLostAttempts } from './node-loss.js';
import { planPass, requestOf } from './plan.js';
import { Retention } from './retention.js';

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
  private informers: Informer[] = [];
  private passRequested = false;
  private sweepRequested = false;
  private passLoop: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private synced = false;
  private stopped = false;

  constructor(
    readonly config: MasterConfig,
    private readonly logger: Logger,
  ) {
    this.policy = createPolicy(config.policy);
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, nodeLostRetries: config.nodeLostRetries };
    this.store = new Store({ endpoints: config.endpoints, prefix: config.prefix });
    this.leadership = new Leadership(this.store, { id: config.id, hostname: os.hostname(), since: Date.now(), policy: this.policy.name }, config.leaseTtlSeconds, logger);
    this.committer = new Committer(
      this.store,
      this.state,
      logger,
      config.commitBatch,
      config.commitConcurrency,
      () => this.leadership.guard(),
      { onConflict: () => void this.afterConflict() },
    );
    this.retention = new Retention(
      this.store,
      { retainMs: config.retainMs, retainJobs: config.retainJobs },
      config.retentionIntervalMs,
      () => this.isLeader(),
      () => this.leadership.guard(),
      logger,
    );
  }

  isLeader(): boolean {
    return this.leadership.isLeader();
  }

  async start(): Promise<void> {
    const { keys } = this.store;
    const follow = <T>(prefix: string, name: string, reset: (items: never[]) => StateChange, apply: (events: never[]) => StateChange) =>
      startInformer<T>(this.store, prefix, {
        reset: (items) => this.onChange(reset(items as never[]), true),
        events: (events) => this.onChange(apply(events as never[]), false),
        error: (err) => this.logger.warn({ err: err.message, watch: name }, 'watch failed; re-listing'),
      });
    this.informers = [
      follow<NodeInfo>(keys.collection('nodes'), 'nodes', (i) => this.state.resetNodes(i), (e) => this.state.applyNodeEvents(e)),
      follow<Assignment>(keys.collection('assign'), 'assignments', (i) => this.state.resetAssignments(i), (e) => this.state.applyAssignmentEvents(e)),
      follow<Job>(keys.collection('jobs'), 'jobs', (i) => this.state.resetJobs(i), (e) => this.state.applyJobEvents(e)),
    ];
    await Promise.all(this.informers.map((i) => i.ready));
    this.synced = true;
    this.leadership.on('elected', () => {
      this.sweepRequested = true;
      this.requestPass();
    });
    this.leadership.start();
    this.retention.start();
    this.logger.info(
      { id: this.config.id, policy: this.policy.name, nodes: this.state.nodes.size, pending: this.state.pending.size },
      `master started with placement policy ${this.policy.name}; campaigning for leadership`,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.retention.stop();
    await this.passLoop;
    await this.committer.idle();
    await this.leadership.stop();
    await Promise.all(this.informers.map((i) => i.stop()));
    this.store.close();
    this.logger.info('master stopped');
  }

  private onChange(change: StateChange, reset: boolean): void {
    if (change.nodesLeft || reset) this.sweepRequested = true;
    if (change.capacityChanged || change.newPending || change.nodesLeft || reset) this.requestPass();
  }

  private requestPass(): void {
    this.passRequested = true;
    if (!this.synced || this.stopped || this.passLoop || !this.isLeader()) return;
    this.passLoop = this.runPasses().finally(() => {
      this.passLoop = undefined;
      if (this.passRequested && !this.stopped) this.requestPass();
    });
  }

  private async runPasses(): Promise<void> {
    while (this.passRequested && !this.stopped && this.isLeader()) {
      this.passRequested = false;
      try {
        if (this.sweepRequested) {
          this.sweepRequested = false;
          await requeueLostAttempts(this.store, this.state, () => this.leadership.guard(), this.retryPolicy, this.logger);
        }
        await this.runPass();
      } catch (err) {
        this.logger.error({ err }, 'scheduling pass failed');
        this.sweepRequested = true;
        this.retryLater(1000);
      }
    }
  }

  /** Plans and hands the placements to the commit pipeline; planning never waits for etcd. */
  private async runPass(): Promise<void> {
    const started = performance.now();
    const now = Date.now();
    const plan = planPass(this.state, this.policy, this.committer.busyJobs, now);
    if (plan.nextRetryAt !== undefined) this.retryLater(plan.nextRetryAt - now);
    this.committer.enqueue(plan.placements);
    this.committer.writeReasons(plan.reasonUpdates);
    if (plan.truncated) {
      this.passRequested = true;
      // Let the commits just queued go out before planning the next slice.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (plan.placements.length > 0 || plan.reasonUpdates.length > 0) {
      this.logger.debug(
        { planned: plan.placements.length, reasons: plan.reasonUpdates.length, pending: plan.stillPending, ms: Math.round(performance.now() - started) },
        'scheduling pass',
      );
    }
  }

  private async afterConflict(): Promise<void> {
    try {
      await this.checkTerm();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'could not check the leadership term');
    }
    this.retryLater(RETRY_AFTER_CONFLICT_MS);
  }

  /** A conflict may mean our term ended: if the leader key is not ours, stop leading. */
  private async checkTerm(): Promise<void> {
    const current = await this.store.get(this.store.keys.leader());
    const [guard] = this.leadership.guard();
    if (!current || current.createRevision !== String(guard.create_revision)) this.leadership.lostTerm();
  }

  private retryLater(ms: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.requestPass(), Math.max(0, ms));
  }
}
