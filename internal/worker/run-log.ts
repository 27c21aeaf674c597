import { retryCall } from '../../pkg/concurrency/call-retry.js';
import type { Logger } from '../../pkg/log/logger.js';
import type { Assignment, Job } from '../../pkg/model/index.js';
import type { Store, Versioned } from '../../pkg/store/index.js';
import type { WorkerConfig } from './config.js';
import { attemptLogLimit, type LogLimit } from './log-budget.js';
import { LogSink, resumeAfter, type LogResume } from './log-sink.js';
import type { RunMetrics } from './metrics.js';

export interface RunLogDeps {
  store: Store;
  /** Fences every write: output of a run that was taken away is never stored as a newer attempt's. */
  assignment: Versioned<Assignment>;
  config: Pick<WorkerConfig, 'nodeId' | 'maxLogBytes' | 'jobLogBudgetBytes' | 'logChunkBytes' | 'logFlushMs'>;
  metrics?: RunMetrics;
  logger: Logger;
  /** While true, a failed write is retried however long etcd is away: a run that goes on still needs its log. */
  keepTrying(): boolean;
  /** A write was refused: the assignment was taken from this node. */
  onFenced(): void;
}

/**
 * One attempt's log on this node: its cap (its share of the job's log
 * budget), the sink its output goes through, and where the log an earlier
 * worker process stored ends.
 */
export class RunLog {
  private readonly deps: RunLogDeps;
  /** This attempt's cap, from the job's budget; the per-attempt cap until limitTo() read it. */
  private limit: LogLimit | undefined;

  constructor(deps: RunLogDeps) {
    this.deps = deps;
  }

  /** This attempt's share of the job's log budget (log-budget.ts); a failed read leaves the per-attempt cap alone. */
  async limitTo(job: Job): Promise<void> {
    const { store, config, logger } = this.deps;
    try {
      this.limit = await attemptLogLimit(store, job, config.nodeId, config.maxLogBytes, config.jobLogBudgetBytes);
    } catch (err) {
      logger.warn({ err }, "could not read the job's earlier log sizes; this attempt gets the per-attempt cap");
    }
  }

  /** A sink for the run's output, continuing the stored log after `resume` when given. */
  sink(resume?: LogResume): LogSink {
    const { store, config, metrics, logger, assignment } = this.deps;
    return new LogSink({
      write: (chunks) => store.appendLogChunks(assignment, chunks),
      ...(metrics ? { onStored: metrics.logStored.bind(metrics) } : {}),
      ...(this.limit ?? { maxBytes: config.maxLogBytes }),
      chunkBytes: config.logChunkBytes,
      flushMs: config.logFlushMs,
      keepTrying: () => this.deps.keepTrying(),
      ...(resume ? { resume } : {}),
      onFenced: () => {
        logger.warn('log write fenced: the assignment was taken from this node');
        this.deps.onFenced();
      },
      onError: (err, seq) => logger.warn({ err, seq }, 'dropped log chunks after retries'),
    });
  }

  /**
   * Where the attempt's stored log ends, read again until etcd answers: the
   * run stays in the worker's hands meanwhile, so a fence can still kill it.
   * Undefined when `giveUp` said so first.
   */
  async storedEnd(giveUp: () => boolean): Promise<LogResume | undefined> {
    const { store, config, logger, assignment } = this.deps;
    const { jobId, attempt } = assignment.value;
    try {
      const last = await retryCall(() => store.lastLogChunk(config.nodeId, jobId, attempt), {
        initialDelayMs: 250,
        maxDelayMs: 2000,
        retryable: () => !giveUp(),
        onRetry: (err, failures) => {
          if (failures === 1) logger.warn({ err }, 'could not read the stored log; retrying');
        },
      });
      return resumeAfter(last);
    } catch {
      return undefined; // only giveUp() ends the tries
    }
  }
}
