import type { Logger } from 'pino';
import type { Assignment, Job, NodeInfo } from '../../pkg/model/index.js';
import { startInformer, Store, type Informer } from '../../pkg/store/index.js';
import { getPolicy, type Policy } from '../scheduler/index.js';
import { ClusterState, type StateChange } from './cluster-state.js';
import { Committer } from './committer.js';
import type { MasterConfig } from './config.js';
import { planPass } from './plan.js';

/** After a pass lost races, wait for the watch to bring the newer state before trying again. */
const RETRY_AFTER_CONFLICT_MS = 25;

/**
 * The master: follows nodes, assignments and jobs in etcd into one in-memory
 * snapshot, and whenever something could change a placement (a job arrives,
 * capacity frees up, a node joins) runs a scheduling pass and commits it.
 */
export class Master {
  readonly state = new ClusterState();
  readonly policy: Policy;
  private readonly store: Store;
  private readonly committer: Committer;
  private informers: Informer[] = [];
  private passRequested = false;
  private passLoop: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private ready = false;
  private stopped = false;

  constructor(
    readonly config: MasterConfig,
    private readonly logger: Logger,
  ) {
    this.policy = getPolicy(config.policy);
    this.store = new Store({ endpoints: config.endpoints, prefix: config.prefix });
    this.committer = new Committer(this.store, this.state, logger, config.commitBatch, config.commitConcurrency);
  }

  async start(): Promise<void> {
    const { keys } = this.store;
    const follow = <T>(prefix: string, name: string, reset: (items: never[]) => StateChange, apply: (events: never[]) => StateChange) =>
      startInformer<T>(this.store, prefix, {
        reset: (items) => this.onChange(reset(items as never[])),
        events: (events) => this.onChange(apply(events as never[])),
        error: (err) => this.logger.warn({ err: err.message, watch: name }, 'watch failed; re-listing'),
      });
    this.informers = [
      follow<NodeInfo>(keys.collection('nodes'), 'nodes', (i) => this.state.resetNodes(i), (e) => this.state.applyNodeEvents(e)),
      follow<Assignment>(keys.collection('assign'), 'assignments', (i) => this.state.resetAssignments(i), (e) => this.state.applyAssignmentEvents(e)),
      follow<Job>(keys.collection('jobs'), 'jobs', (i) => this.state.resetJobs(i), (e) => this.state.applyJobEvents(e)),
    ];
    await Promise.all(this.informers.map((i) => i.ready));
    this.ready = true;
    this.logger.info(
      { policy: this.policy.name, nodes: this.state.nodes.size, pending: this.state.pending.size, endpoints: this.config.endpoints },
      `master started with placement policy ${this.policy.name}`,
    );
    this.requestPass();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.passLoop;
    this.store.close();
    this.logger.info('master stopped');
  }

  private onChange(change: StateChange): void {
    if (change.capacityChanged || change.newPending) this.requestPass();
  }

  private requestPass(): void {
    this.passRequested = true;
    if (!this.ready || this.stopped || this.passLoop) return;
    this.passLoop = this.runPasses().finally(() => {
      this.passLoop = undefined;
      if (this.passRequested && !this.stopped) this.requestPass();
    });
  }

  private async runPasses(): Promise<void> {
    while (this.passRequested && !this.stopped) {
      this.passRequested = false;
      try {
        await this.runPass();
      } catch (err) {
        this.logger.error({ err }, 'scheduling pass failed');
        this.retryLater(1000);
      }
    }
  }

  private async runPass(): Promise<void> {
    const started = performance.now();
    const plan = planPass(this.state, this.policy, new Set());
    if (plan.placements.length === 0 && plan.reasonUpdates.length === 0) return;
    const stats = await this.committer.commitPlacements(plan.placements);
    await this.committer.commitReasons(plan.reasonUpdates);
    this.logger.debug(
      { placed: stats.committed, conflicts: stats.conflicts, pending: plan.stillPending, ms: Math.round(performance.now() - started) },
      'scheduling pass',
    );
    if (stats.conflicts > 0) this.retryLater(RETRY_AFTER_CONFLICT_MS);
  }

  private retryLater(ms: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.requestPass(), ms);
  }
}
