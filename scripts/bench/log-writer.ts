import { DEFAULT_LOG_FLUSH_MS } from '../../internal/worker/config.js';
import { NO_CAUSES, type Assignment, type Job } from '../../pkg/model/index.js';
import type { Store, Versioned } from '../../pkg/store/index.js';
import { benchLogLine } from './api-figures.js';
import type { SimNodes } from './sim-nodes.js';
import { waitFor } from './wait.js';

/**
 * One simulated node running one job that prints steadily (--api): it
 * reports the job Running, then writes a log chunk every flush interval of
 * titan-worker (DEFAULT_LOG_FLUSH_MS) with Store.appendLogChunks, the
 * worker's own write, each chunk one line holding its sequence number and
 * the wall-clock time right before the put. The follower in the API load
 * process times each line from that moment to its arrival.
 */
export class LogWriter {
  /** Duration of each chunk's put (the etcd transaction), ms. */
  readonly putMs: number[] = [];
  private assignment: Versioned<Assignment> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private inFlight: Promise<void> | undefined;
  private startedAt = 0;
  private fenced = false;

  constructor(
    private readonly store: Store,
    private readonly nodes: SimNodes,
    private readonly warn: (message: string) => void,
    readonly intervalMs = DEFAULT_LOG_FLUSH_MS,
  ) {}

  get written(): number {
    return this.seq;
  }

  /** Submits the job, waits for its placement on a simulated node, reports it Running and starts writing. */
  async start(job: Job, failure: () => string | undefined, timeoutMs = 60_000): Promise<void> {
    const release = this.nodes.claim(job.id, (assignment) => (this.assignment = assignment));
    await this.store.createJobs([job]);
    const placed = await waitFor(() => this.assignment !== undefined, { timeoutMs, failure });
    release();
    const assignment = this.assignment;
    if (!placed.ok || assignment === undefined) throw new Error(`the log job was not placed: ${placed.ok ? 'unknown' : placed.reason}`);
    this.startedAt = Date.now();
    const { jobId, attempt } = assignment.value;
    if (!(await this.store.putReport(assignment, { jobId, attempt, state: 'Running', startedAt: this.startedAt }))) {
      throw new Error('the log job was taken from its node before it started');
    }
    this.timer = setInterval(() => {
      if (this.inFlight === undefined && !this.fenced) this.inFlight = this.flush(assignment).finally(() => (this.inFlight = undefined));
    }, this.intervalMs);
  }

  /** Stops writing at once (the run is ending). */
  halt(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.fenced = true;
  }

  /** Stops writing and reports the job ended (exit 0), so its log stream ends too. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
    const assignment = this.assignment;
    if (!assignment || this.fenced) return;
    const { jobId, attempt } = assignment.value;
    const end = { result: { type: 'exited' as const, exitCode: 0 }, causes: NO_CAUSES, finishedAt: Date.now() };
    await this.store.putReport(assignment, { jobId, attempt, state: 'Ended', startedAt: this.startedAt, end });
    this.assignment = undefined;
  }

  private async flush(assignment: Versioned<Assignment>): Promise<void> {
    // A failed write is retried with the same seq at the next tick, as the worker's sink retries: the log has no gap.
    const seq = this.seq;
    const t0 = performance.now();
    const chunk = { seq, entries: [{ stream: 'stdout' as const, data: benchLogLine(seq, performance.timeOrigin + t0) }] };
    try {
      if (!(await this.store.appendLogChunks(assignment, [chunk]))) {
        this.fenced = true;
        this.warn('the log job was taken from its node: its log stops');
        return;
      }
      this.putMs.push(performance.now() - t0);
      this.seq++;
    } catch (err) {
      this.warn(`log chunk ${seq} not written: ${(err as Error).message}`);
    }
  }
}
