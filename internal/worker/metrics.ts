import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AttemptOutcome, ExecutorKind, FailureKind, LogStream, Resources } from '../../pkg/model/index.js';
import { metricResources } from '../../pkg/metrics/resources.js';
import { watchFailuresCounter } from '../../pkg/metrics/watch-failures.js';

/** What the worker's gauges read when scraped. */
export interface WorkerMetricsSource {
  readonly nodeId: string;
  /** What this node offers. */
  capacity(): Resources;
  /** What the assignments this node holds ask for together. */
  allocated(): Resources;
  /** The executor of every run going on now (started or re-attached, not yet ended). */
  liveRuns(): Iterable<ExecutorKind>;
  /** The node is registered under a lease whose keepalives work. */
  registered(): boolean;
  /** Watch handlers that threw so far (each logged with its key, then survived). */
  watchCallbackFailures(): number;
}

/**
 * How an attempt ended, as the worker saw it: `succeeded`, `cancelled`, or
 * the failure kind (exit, timeout, lost-container, start-failed, node-lost,
 * evicted; an evicted attempt goes back to Pending).
 */
export type AttemptEndLabel = 'succeeded' | 'cancelled' | FailureKind;

/** The label of an attempt's outcome (attemptOutcome: what the master will make of the node's report). */
export function attemptEndLabel(outcome: AttemptOutcome): AttemptEndLabel {
  if (outcome.failure !== undefined) return outcome.failure;
  return outcome.state === 'Succeeded' ? 'succeeded' : outcome.state === 'Cancelled' ? 'cancelled' : 'exit';
}

/** What a job run records (JobRun's part of the metrics). */
export interface RunMetrics {
  /** A run started `seconds` after the worker took up its assignment. */
  started(executor: ExecutorKind, seconds: number): void;
  /** Output stored in etcd. */
  logStored(stream: LogStream, bytes: number): void;
  /** An attempt's end was reported. */
  attemptEnded(outcome: AttemptEndLabel): void;
}

const START_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

/**
 * The worker's Prometheus metrics, in a registry of its own (several workers
 * in one test process must not share the global one). Gauges are read from
 * the worker when scraped; counters and the histogram are bumped by the
 * runs. No job id or name is a label. docs/metrics.md lists every metric.
 */
export class WorkerMetrics implements RunMetrics {
  readonly registry = new Registry();
  private readonly startLatency: Histogram<'executor'>;
  private readonly logBytes: Counter<'stream'>;
  private readonly attempts: Counter<'outcome'>;

  constructor(source: WorkerMetricsSource) {
    const registers = [this.registry];
    new Gauge({
      name: 'titan_worker_running_jobs',
      help: 'Runs going on on this node now (containers or shell processes, started or re-attached), by executor.',
      labelNames: ['executor'],
      registers,
      collect() {
        this.reset();
        for (const executor of source.liveRuns()) this.inc({ executor });
      },
    });
    this.startLatency = new Histogram({
      name: 'titan_worker_start_latency_seconds',
      help: 'Time from the worker taking up an assignment to its container or process running (claim, log budget read, image pull, create, start), by executor.',
      labelNames: ['executor'],
      buckets: START_BUCKETS,
      registers,
    });
    this.logBytes = new Counter({
      name: 'titan_worker_log_bytes_total',
      help: 'Bytes of job output (and Titan\'s notes in it) this worker stored in etcd, by stream.',
      labelNames: ['stream'],
      registers,
    });
    this.attempts = new Counter({
      name: 'titan_worker_attempts_ended_total',
      help: 'Attempts whose end this worker reported, by outcome: succeeded, cancelled, or the failure kind (exit, timeout, lost-container, start-failed, node-lost, evicted).',
      labelNames: ['outcome'],
      registers,
    });
    const perResource = (read: () => Resources) =>
      function (this: Gauge<'node' | 'resource'>): void {
        for (const [resource, value] of metricResources(read())) this.set({ node: source.nodeId, resource }, value);
      };
    new Gauge({
      name: 'titan_worker_node_capacity',
      help: 'What this node offers, by resource: cpu in cores, memory in bytes, gpu in devices.',
      labelNames: ['node', 'resource'],
      registers,
      collect: perResource(() => source.capacity()),
    });
    new Gauge({
      name: 'titan_worker_node_allocated',
      help: "What the assignments this node holds ask for, by resource (the master's view of the node comes from the same assignments).",
      labelNames: ['node', 'resource'],
      registers,
      collect: perResource(() => source.allocated()),
    });
    new Gauge({
      name: 'titan_worker_registered',
      help: '1 while the node is registered under a lease whose keepalives work (it claims new work), else 0.',
      registers,
      collect() {
        this.set(source.registered() ? 1 : 0);
      },
    });    watchFailuresCounter('worker', this.registry, () => source.watchCallbackFailures());
  }

  started(executor: ExecutorKind, seconds: number): void {
    this.startLatency.observe({ executor }, seconds);
  }

  logStored(stream: LogStream, bytes: number): void {
    this.logBytes.inc({ stream }, bytes);
  }

  attemptEnded(outcome: AttemptEndLabel): void {
    this.attempts.inc({ outcome });
  }
}
