/**
 * When to do work that events ask for: at most one run per `windowMs`. Work
 * asked for after a quiet window runs at once, so a lone event is handled
 * with no added latency; work asked for sooner waits for the window to end,
 * so a stream of events shares one run (one scheduling pass, one etcd
 * transaction) instead of paying one each.
 */
export class CoalescingWindow {
  private lastRunAt = -Infinity;

  /** @param windowMs the window, or a function giving it (a window that follows the work's own cost) */
  constructor(private readonly windowMs: number | (() => number)) {}

  /** How long work asked for at `now` should wait (0: run it now). */
  delay(now = performance.now()): number {
    const window = typeof this.windowMs === 'number' ? this.windowMs : this.windowMs();
    return Math.max(0, window - (now - this.lastRunAt));
  }

  /** The work ran (started) at `now`. */
  ran(now = performance.now()): void {
    this.lastRunAt = now;
  }
}
