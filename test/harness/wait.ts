/**
 * Polls `check` until it returns a truthy value or the timeout passes; the error names what was
 * awaited. A function for `what` is called only then, so it can show the processes' logs at the
 * time of the failure rather than at the start of the wait.
 */
export async function waitFor<T>(what: string | (() => string), check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function randomPrefix(): string {
  return `/t-${Math.random().toString(36).slice(2, 10)}`;
}
