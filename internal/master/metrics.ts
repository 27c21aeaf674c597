import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { queueOf, withDefaultQueue, type Queue, type Resources } from '../../pkg/model/index.js';
import { metricResources } from '../../pkg/metrics/resources.js';
import { watchFailuresCounter } from '../../pkg/metrics/watch-failures.js';
import { pendingReasonKind, queueFairShares, type PendingReasonKind } from '../scheduler/index.js';
import type { ClusterState } from './cluster-state.js';
import type { PlannedPlacement } from './plan.js';

/** What the master's metrics read when scraped: its own in-memory state, nothing from etcd. */
export interface MasterMetricsSource {
  readonly state: ClusterState;
  /** The stored queues (the default one may be missing: it exists implicitly). */
  queues(): readonly Queue[];
  /** Whether the node reported the job's attempt running (else the job is Scheduled). */
  isRunning(nodeId: string, jobId: string): boolean;
  isLeader(): boolean;
  /** The informers delivered their first lists: the snapshot is the cluster's. */
  isSynced(): boolean;
  /** Watch handlers that threw so far (each logged with its key, then survived). */
  watchCallbackFailures(): number;
}

/** How an etcd transaction of the master ended. */
export type TxnResultLabel = 'committed' | 'conflict' | 'error';

/** Why the leader flagged attempts for eviction: a small fixed set, never the reason's text. */
export type EvictionReason = 'reclaim' | 'preempt' | 'gang-restart';

const PLACEMENT_WAIT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400];
const PASS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * The master's Prometheus metrics, in a registry of its own (several
 * masters in one process must not share the global one). Gauges are
 * computed from the master's snapshot when scraped, so the scheduling pass
 * pays nothing for them; the counters and histograms are bumped where the
 * master already handles the event (a commit, an eviction). No job id or
 * name is ever a label. docs/metrics.md lists every metric; a test keeps
 * the two in step.
 */
export class MasterMetrics {
  readonly registry = new Registry();
  private readonly placementWait: Histogram<'queue'>;
  private readonly placements: Counter<'queue'>;
  private readonly passDuration: Histogram;
  private readonly txns: Counter<'result'>;
  private readonly evictions: Counter<'reason'>;
  private readonly preemptions: Counter<'queue'>;

  constructor(source: MasterMetricsSource) {
    const registers = [this.registry];
    const { state } = source;

    new Gauge({
      name: 'titan_jobs',
      help: 'Jobs by state and queue: Pending (queued), Scheduled (placed, not yet reported started), Running (its node reported it started). Ended jobs are not counted.',
      labelNames: ['state', 'queue'],
      registers,
      collect() {
        this.reset();
        for (const job of state.pending.values()) this.inc({ state: 'Pending', queue: queueOf(job) });
        state.forEachAllocation((jobId, nodeId, queue) => this.inc({ state: source.isRunning(nodeId, jobId) ? 'Running' : 'Scheduled', queue }));
      },
    });
    new Gauge({
      name: 'titan_pending_jobs',
      help: 'Pending jobs by queue and what they wait for (the kind of their pending reason).',
      labelNames: ['queue', 'reason'],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const job of state.pending.values()) {
          const reason: PendingReasonKind = pendingReasonKind(job.reason, job.retryAt, now);
          this.inc({ queue: queueOf(job), reason });
        }
      },
    });
    this.placementWait = new Histogram({
      name: 'titan_placement_wait_seconds',
      help: "Time from a job's submission to its first placement (scheduledAt - createdAt), by queue; later attempts are not counted.",
      labelNames: ['queue'],
      buckets: PLACEMENT_WAIT_BUCKETS,
      registers,
    });
    this.placements = new Counter({
      name: 'titan_placements_total',
      help: 'Placements this master committed (every attempt), by queue.',
      labelNames: ['queue'],
      registers,
    });
    this.passDuration = new Histogram({
      name: 'titan_scheduling_pass_duration_seconds',
      help: "Time one scheduling pass took to plan (commits to etcd run after it, in the background).",
      buckets: PASS_BUCKETS,
      registers,
    });

    new Gauge({
      name: 'titan_nodes',
      help: 'Registered nodes.',
      registers,
      collect() {
        this.set(state.nodes.size);
      },
    });
    const perNode = (pick: (view: { capacity: Resources; allocated: Resources }) => Resources) =>
      function (this: Gauge<'node' | 'resource'>): void {
        this.reset();
        for (const [node, entry] of state.nodes) for (const [resource, value] of metricResources(pick(entry.view))) this.set({ node, resource }, value);
      };
    new Gauge({
      name: 'titan_node_capacity',
      help: 'What a registered node offers, by resource: cpu in cores, memory in bytes, gpu in devices.',
      labelNames: ['node', 'resource'],
      registers,
      collect: perNode((v) => v.capacity),
    });
    new Gauge({
      name: 'titan_node_allocated',
      help: 'What placed and running jobs hold on a node, by resource: cpu in cores, memory in bytes, gpu in devices (a share of one is a fraction).',
      labelNames: ['node', 'resource'],
      registers,
      collect: perNode((v) => v.allocated),
    });

    const perQueue = (values: () => Iterable<readonly [string, Partial<Resources>]>) =>
      function (this: Gauge<'queue' | 'resource'>): void {
        this.reset();
        for (const [queue, amounts] of values()) {
          // A limit caps some resources only: the others (NaN here) get no sample.
          const full = { cpu: amounts.cpu ?? NaN, memory: amounts.memory ?? NaN, gpuMilli: amounts.gpuMilli ?? NaN };
          for (const [resource, value] of metricResources(full)) if (!Number.isNaN(value)) this.set({ queue, resource }, value);
        }
      };
    const allQueues = (): Queue[] => withDefaultQueue(source.queues());
    new Gauge({
      name: 'titan_queue_quota',
      help: 'A queue\'s guaranteed quota, by resource (cpu cores, memory bytes, gpu devices).',
      labelNames: ['queue', 'resource'],
      registers,
      collect: perQueue(() => allQueues().map((q) => [q.name, q.quota] as const)),
    });
    new Gauge({
      name: 'titan_queue_limit',
      help: "A queue's hard limit, by resource; only the resources it caps.",
      labelNames: ['queue', 'resource'],
      registers,
      collect: perQueue(() => allQueues().flatMap((q) => (q.limit ? [[q.name, q.limit] as const] : []))),
    });
    new Gauge({
      name: 'titan_queue_allocated',
      help: "What a queue's placed and running jobs hold (its own, not its child queues'), by resource.",
      labelNames: ['queue', 'resource'],
      registers,
      collect: perQueue(() => state.allocatedByQueue()),
    });
    new Gauge({
      name: 'titan_queue_fair_share',
      help: 'What a queue should hold now under fair sharing (quota first, then idle capacity by weight, for its demand), by resource.',
      labelNames: ['queue', 'resource'],
      registers,
      collect: perQueue(() => queueFairShares(allQueues(), state.pending.values(), state.allocatedByQueue(), state.capacity())),
    });

    this.evictions = new Counter({
      name: 'titan_evictions_total',
      help: 'Attempts the leader flagged for eviction, by reason: reclaim (for a queue below its quota), preempt (for a higher-priority job), gang-restart (a replica of the gang failed).',
      labelNames: ['reason'],
      registers,
    });
    this.preemptions = new Counter({
      name: 'titan_preemptions_total',
      help: 'Pending jobs for which the leader evicted others to make room, by the pending job\'s queue.',
      labelNames: ['queue'],
      registers,
    });
    this.txns = new Counter({
      name: 'titan_etcd_transactions_total',
      help: "This master's compare-and-swap transactions, by result: committed, conflict (a compare failed: something changed, or the term ended), error (etcd did not answer).",
      labelNames: ['result'],
      registers,
    });
    new Gauge({
      name: 'titan_master_leader',
      help: '1 while this master is the leader (the one that schedules), else 0.',
      registers,
      collect() {
        this.set(source.isLeader() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'titan_master_synced',
      help: "1 once this master's caches hold the cluster (first lists of jobs, nodes, assignments and queues delivered), else 0.",
      registers,
      collect() {
        this.set(source.isSynced() ? 1 : 0);
      },
    });    watchFailuresCounter('master', this.registry, () => source.watchCallbackFailures());
  }

  /** One scheduling pass's planning time. */
  observePass(seconds: number): void {
    this.passDuration.observe(seconds);
  }

  /** Placements that just committed. */
  placed(batch: readonly PlannedPlacement[]): void {
    for (const p of batch) {
      const queue = queueOf(p.job);
      this.placements.inc({ queue });
      if (p.job.attempt === 0) this.placementWait.observe({ queue }, Math.max(0, p.assignedAt - p.job.createdAt) / 1000);
    }
  }

  transaction(result: TxnResultLabel): void {
    this.txns.inc({ result });
  }

  evicted(reason: EvictionReason, count: number): void {
    if (count > 0) this.evictions.inc({ reason }, count);
  }

  preempted(queue: string): void {
    this.preemptions.inc({ queue });
  }
}
