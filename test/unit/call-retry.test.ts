import { describe, expect, it } from 'vitest';
import { callBackoff, isRetryAborted, retryCall, RetryAbortedError } from '../../pkg/concurrency/call-retry.js';

/** The first `n` delays of one backoff sequence. */
function delays(n: number, initialDelayMs: number, maxDelayMs: number): number[] {
  const out: number[] = [];
  let backoff = callBackoff({ initialDelayMs, maxDelayMs }).next();
  for (let i = 0; i < n; i++) {
    out.push(backoff.duration);
    backoff = backoff.next(undefined);
  }
  return out;
}

const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

class Transient extends Error {}

describe('callBackoff', () => {
  it('grows about twofold per failure, jittered, and never past its cap', () => {
    const runs = Array.from({ length: 400 }, () => delays(8, 100, 2000));
    const perStep = (i: number): number[] => runs.map((r) => r[i]);
    // The first delays are about the initial one; from there the mean doubles per step.
    expect(mean(perStep(0))).toBeLessThan(150);
    expect(mean(perStep(1))).toBeLessThan(150);
    for (const step of [2, 3, 4]) expect(mean(perStep(step))).toBeGreaterThan(mean(perStep(step - 1)) * 1.6);
    // Jittered: the same step differs between sequences.
    expect(new Set(perStep(2)).size).toBeGreaterThan(300);
    // Capped, and the cap is reached.
    for (const run of runs) for (const d of run) expect(d).toBeLessThanOrEqual(2000);
    expect(perStep(7).filter((d) => d === 2000).length).toBeGreaterThan(300);
  });
});

describe('retryCall', () => {
  it('retries a retryable failure until the call succeeds, telling each wait', async () => {
    let calls = 0;
    const waits: { failures: number; delayMs: number }[] = [];
    const result = await retryCall(
      async () => {
        if (++calls < 4) throw new Transient('not yet');
        return 'done';
      },
      { retryable: (err) => err instanceof Transient, initialDelayMs: 1, maxDelayMs: 5, onRetry: (_err, failures, delayMs) => waits.push({ failures, delayMs }) },
    );
    expect(result).toBe('done');
    expect(calls).toBe(4);
    expect(waits.map((w) => w.failures)).toEqual([1, 2, 3]);
    for (const w of waits) expect(w.delayMs).toBeLessThanOrEqual(5);
  });

  it('throws a failure that is not retryable at once', async () => {
    let calls = 0;
    const fatal = new Error('denied');
    await expect(
      retryCall(
        async () => {
          calls++;
          throw fatal;
        },
        { retryable: (err) => err instanceof Transient, initialDelayMs: 1, maxDelayMs: 5 },
      ),
    ).rejects.toBe(fatal);
    expect(calls).toBe(1);
  });

  it('gives up after its retries with the last failure', async () => {
    let calls = 0;
    const err = retryCall(
      async () => {
        throw new Transient(`failure ${++calls}`);
      },
      { retryable: () => true, initialDelayMs: 1, maxDelayMs: 2, retries: 3 },
    );
    await expect(err).rejects.toThrow('failure 4');
    expect(calls).toBe(4);
  });

  it('gives up once its time budget is spent, trying once more at the deadline', async () => {
    let calls = 0;
    const started = performance.now();
    await expect(
      retryCall(
        async () => {
          calls++;
          throw new Transient('down');
        },
        { retryable: () => true, initialDelayMs: 50, maxDelayMs: 100, budgetMs: 300 },
      ),
    ).rejects.toThrow('down');
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    // Without the budget it would retry until the test's own timeout; the bound leaves room for a loaded machine.
    expect(elapsed).toBeLessThan(10_000);
    expect(calls).toBeGreaterThan(2);
  });

  it('passes the number of failures to the classifier, which may stop early', async () => {
    let calls = 0;
    await expect(
      retryCall(
        async () => {
          calls++;
          throw new Transient('down');
        },
        { retryable: (_err, failures) => failures < 2, initialDelayMs: 1, maxDelayMs: 2 },
      ),
    ).rejects.toThrow('down');
    expect(calls).toBe(2);
  });

  it('stops waiting at once on abort, makes no further call, and says so', async () => {
    const abort = new AbortController();
    let calls = 0;
    const started = performance.now();
    const run = retryCall(
      async () => {
        calls++;
        throw new Transient('down');
      },
      { retryable: () => true, initialDelayMs: 5000, maxDelayMs: 5000, signal: abort.signal, onRetry: () => setTimeout(() => abort.abort(), 20) },
    );
    const err = await run.catch((e: unknown) => e);
    expect(isRetryAborted(err)).toBe(true);
    expect((err as RetryAbortedError).cause).toBeInstanceOf(Transient);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(calls).toBe(1);
  });

  it('hands its signal to the call, and rejects at once when aborted before it starts', async () => {
    const abort = new AbortController();
    let seen: AbortSignal | undefined;
    await retryCall(async (signal) => void (seen = signal), { retryable: () => true, initialDelayMs: 1, maxDelayMs: 1, signal: abort.signal });
    expect(seen).toBe(abort.signal);
    abort.abort();
    let called = false;
    await expect(
      retryCall(async () => void (called = true), { retryable: () => true, initialDelayMs: 1, maxDelayMs: 1, signal: abort.signal }),
    ).rejects.toBeInstanceOf(RetryAbortedError);
    expect(called).toBe(false);
  });
});
