import type { Watcher } from 'etcd3';

/**
 * Waits for a cancel or stop, but not for long and never failing: an etcd3
 * watcher that etcd already cancelled, or a dead connection, may never
 * confirm, and callers must still go on (or exit).
 */
export function settleSoon(work: Promise<unknown>, ms = 1000): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    work.then(done, done);
  });
}

/**
 * Cancels a watcher without hanging: the client waits for etcd to confirm a
 * cancel, which never comes for a watch etcd itself cancelled (compaction).
 */
export function cancelWatcher(w: Watcher): Promise<void> {
  return settleSoon(w.cancel());
}

/** What a watch or informer callback threw, with the key (or prefix) it was handling: `key` is in the logged `err`. */
export class WatchCallbackError extends Error {
  constructor(
    readonly key: string,
    readonly callback: string,
    cause: unknown,
  ) {
    super(`${callback} for ${key} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'WatchCallbackError';
  }
}

/**
 * Runs watch callbacks so that what they throw is reported (with the key)
 * and counted, never rethrown: thrown inside etcd3's stream handler, an
 * exception is rethrown asynchronously and ends the process.
 */
export class CallbackGuard {
  private failures = 0;

  /** `report` gets every failure; it should log it (pino `err`). What it throws itself is dropped: the count stands. */
  constructor(private readonly report: (err: WatchCallbackError) => void) {}

  /** Callbacks that threw so far. */
  count(): number {
    return this.failures;
  }

  /** Runs `fn`; undefined when it threw (then reported and counted). */
  run<R>(key: string, callback: string, fn: () => R): R | undefined {
    try {
      return fn();
    } catch (err) {
      this.failed(new WatchCallbackError(key, callback, err));
      return undefined;
    }
  }

  /** Counts and reports a failure caught elsewhere. */
  failed(err: WatchCallbackError): void {
    this.failures++;
    try {
      this.report(err);
    } catch {
      // A broken reporter must not turn a handled failure into a fatal one.
    }
  }
}

/** The report of a guard whose owner has no logger: a process warning (stderr), so the failure is never silent. */
export function warnProcess(err: WatchCallbackError): void {
  process.emitWarning(err.message, { code: 'TITAN_WATCH_CALLBACK', detail: err.stack });
}
