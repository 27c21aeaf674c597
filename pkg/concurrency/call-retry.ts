import {
  decorrelatedJitterGenerator,
  ExponentialBackoff,
  handleWhen,
  retry,
  type IBackoff,
  type IBackoffFactory,
} from 'cockatiel';

/**
 * The one way a call to etcd or Docker that failed for a passing reason is
 * tried again: exponential backoff with decorrelated jitter (so many clients
 * that lost the same server do not come back in lockstep), each delay capped.
 * Not to be confused with a job's retry policy (pkg/model/retry.ts), which
 * decides whether a failed run is placed again.
 */
export interface CallRetryOptions {
  /**
   * Whether a failure is worth another try (classified by gRPC status or
   * HTTP status code, e.g. isTransientStoreError in pkg/store/errors.ts).
   * `failures` counts the failed tries so far, this one included. Anything
   * else is thrown at once.
   */
  retryable(err: unknown, failures: number): boolean;
  /** Scale of the first delay, ms (the delays grow about twofold per failure). */
  initialDelayMs: number;
  /** No single delay is longer. */
  maxDelayMs: number;
  /** Tries after the first, at most (default: no limit). */
  retries?: number;
  /**
   * Gives up once this long has passed since the first try: the last delay
   * is cut short to try once more at the deadline, then the last failure is thrown.
   */
  budgetMs?: number;
  /** Shutdown: the wait ends at once, no further try is made, and retryCall rejects with RetryAbortedError. */
  signal?: AbortSignal;
  /** Before each wait (for a log line or a counter). */
  onRetry?(err: unknown, failures: number, delayMs: number): void;
}

/** What retryCall rejects with when its signal aborted it; the last failure (if any) is the cause. */
export class RetryAbortedError extends Error {
  constructor(cause: unknown) {
    super('retry aborted', cause === undefined ? undefined : { cause });
    this.name = 'RetryAbortedError';
  }
}

export function isRetryAborted(err: unknown): err is RetryAbortedError {
  return err instanceof RetryAbortedError;
}

/** The delays of the policy, also for etcd3's own watch reconnects (pkg/store/client.ts). */
export function callBackoff(options: Pick<CallRetryOptions, 'initialDelayMs' | 'maxDelayMs'>): ExponentialBackoff<[number, number]> {
  return new ExponentialBackoff({ generator: decorrelatedJitterGenerator, initialDelay: options.initialDelayMs, maxDelay: options.maxDelayMs });
}

/** Never waits past the deadline (performance.now() time). */
class DeadlineBackoff<C> implements IBackoffFactory<C> {
  constructor(
    private readonly inner: IBackoffFactory<C>,
    private readonly deadline: number,
  ) {}

  next(context: C): IBackoff<C> {
    return clip(this.inner.next(context), this.deadline);
  }
}

function clip<C>(backoff: IBackoff<C>, deadline: number): IBackoff<C> {
  return {
    duration: Math.max(0, Math.min(backoff.duration, deadline - performance.now())),
    next: (context: C) => clip(backoff.next(context), deadline),
  };
}

/**
 * Runs `call` until it succeeds, a failure is not retryable, or the retries
 * or budget are spent (then the last failure is thrown as it was).
 * `call` gets the signal, to abort a request in flight on shutdown.
 */
export async function retryCall<T>(call: (signal: AbortSignal, attempt: number) => Promise<T>, options: CallRetryOptions): Promise<T> {
  const signal = options.signal ?? new AbortController().signal;
  if (signal.aborted) throw new RetryAbortedError(undefined);
  const deadline = options.budgetMs === undefined ? Infinity : performance.now() + options.budgetMs;
  let failures = 0;
  let last: unknown;
  const policy = retry(
    handleWhen((err) => {
      if (err instanceof RetryAbortedError) return false;
      failures++;
      last = err;
      return !signal.aborted && performance.now() < deadline && options.retryable(err, failures);
    }),
    { maxAttempts: options.retries ?? Infinity, backoff: new DeadlineBackoff(callBackoff(options), deadline) },
  ).dangerouslyUnref();

  // cockatiel's wait ignores the signal: its timer is unreferenced (an abort must not hold the process
  // that long) and this one keeps the process alive while a wait is on, until the wait ends or the abort.
  let hold: NodeJS.Timeout | undefined;
  const release = (): void => {
    if (hold !== undefined) clearTimeout(hold);
    hold = undefined;
  };
  const listener = policy.onRetry((event) => {
    release();
    hold = setTimeout(release, event.delay);
    options.onRetry?.(last, failures, event.delay);
  });

  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(new RetryAbortedError(last));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  const run = policy.execute(({ attempt }) => {
    if (signal.aborted) throw new RetryAbortedError(last);
    return call(signal, attempt);
  }, signal);
  // Whichever loses the race below settles unobserved.
  run.catch(() => undefined);
  aborted.catch(() => undefined);
  try {
    return await Promise.race([run, aborted]);
  } catch (err) {
    if (signal.aborted && !(err instanceof RetryAbortedError)) throw new RetryAbortedError(last);
    throw err;
  } finally {
    release();
    listener.dispose();
    signal.removeEventListener('abort', onAbort);
  }
}
