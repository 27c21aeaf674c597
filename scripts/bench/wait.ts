import type { Store } from '../../pkg/store/index.js';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export interface WaitOptions {
  timeoutMs: number;
  /** A reason to give up early (the master died); checked every poll. */
  failure?: () => string | undefined;
  /** Called every progressEveryMs while waiting. */
  progress?: () => void;
  progressEveryMs?: number;
  pollMs?: number;
}

export type WaitOutcome = { ok: true } | { ok: false; reason: string };

/** Polls `done` until it holds, the timeout passes or `failure` names a reason. */
export async function waitFor(done: () => boolean, options: WaitOptions): Promise<WaitOutcome> {
  const started = performance.now();
  let lastProgress = started;
  const every = options.progressEveryMs ?? 2000;
  for (;;) {
    if (done()) return { ok: true };
    const failure = options.failure?.();
    if (failure !== undefined) return { ok: false, reason: failure };
    const now = performance.now();
    if (now - started > options.timeoutMs) return { ok: false, reason: `timed out after ${Math.round(options.timeoutMs / 1000)} s` };
    if (options.progress && now - lastProgress >= every) {
      lastProgress = now;
      options.progress();
    }
    await sleep(options.pollMs ?? 20);
  }
}

/**
 * Waits until node `nodeId` is registered under the store's prefix; the
 * reason it did not (a process that died, as `failure` tells, or 30 s
 * passed), or undefined once it is.
 */
export async function waitForNode(store: Store, nodeId: string, failure: () => string | undefined, timeoutMs = 30_000): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const f = failure();
    if (f) return f;
    const nodes = await store.listNodes().catch(() => undefined);
    if (nodes?.items.some((i) => store.keys.idOf(i.key) === nodeId)) return undefined;
    await sleep(100);
  }
  return `the worker did not register within ${timeoutMs / 1000} s`;
}
