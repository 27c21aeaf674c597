import { REPORTS_PER_TXN, type ReportWrite, type ReportWriteOutcome, type Store } from '../../pkg/store/index.js';

/** Report transactions in flight at once; what comes meanwhile waits and goes together. */
const IN_FLIGHT = 2;

interface Queued {
  write: ReportWrite;
  resolve: (outcome: ReportWriteOutcome) => void;
  reject: (err: unknown) => void;
}

/**
 * The worker's reports (claims and ends) of all its runs, written through
 * Store.writeReports: those made in the same turn of the event loop, or
 * while earlier ones are in flight, share one transaction, each still fenced
 * by its own assignment. A lone report goes at once. Errors reach the
 * caller of each write, as from a write of its own.
 */
export class ReportBatcher {
  private queue: Queued[] = [];
  private inFlight = 0;
  private scheduled = false;
  /** Report keys (by assignment key) of the writes in flight. */
  private readonly inFlightKeys = new Set<string>();

  constructor(private readonly store: Pick<Store, 'writeReports'>) {}

  write(write: ReportWrite): Promise<ReportWriteOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= IN_FLIGHT || this.queue.length === 0) return;
    this.scheduled = true;
    // After this turn's other reports are queued.
    setImmediate(() => {
      this.scheduled = false;
      this.send();
    });
  }

  private send(): void {
    while (this.inFlight < IN_FLIGHT && this.queue.length > 0) {
      const batch = this.take();
      if (batch.length === 0) return;
      this.inFlight++;
      this.store
        .writeReports(batch.map((q) => q.write))
        .then(
          (outcomes) => batch.forEach((q, i) => q.resolve(outcomes[i])),
          (err: unknown) => batch.forEach((q) => q.reject(err)),
        )
        .finally(() => {
          this.inFlight--;
          for (const q of batch) this.inFlightKeys.delete(q.write.assignment.key);
          this.schedule();
        });
    }
  }

  /**
   * Up to REPORTS_PER_TXN queued writes, at most one per report key in
   * flight (etcd refuses a transaction that puts one key twice, and two
   * writes of one key must land in order: two attempts of one job on this
   * node, the old one's end and the new one's claim); a second waits until
   * the first is written.
   */
  private take(): Queued[] {
    const batch: Queued[] = [];
    const left: Queued[] = [];
    for (const queued of this.queue) {
      const key = queued.write.assignment.key;
      if (batch.length < REPORTS_PER_TXN && !this.inFlightKeys.has(key)) {
        this.inFlightKeys.add(key);
        batch.push(queued);
      } else {
        left.push(queued);
      }
    }
    this.queue = left;
    return batch;
  }
}
