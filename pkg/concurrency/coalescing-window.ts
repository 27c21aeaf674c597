/**
 * When to do work that events ask for: at most one run per `windowMs`. Work
 * asked for after a quiet window runs at once, so a lone event is handled
 * with no added latency; work asked for sooner waits for the window to end,
 * so a stream of events shares one run (one scheduling pass, one etcd
 * transaction) instead of paying one each.
 */
export class CoalescingWindow {
  private lastRunAt = -Infinity;

  constructor(private readonly windowMs: number) {}

  /** How long work asked for at `now` should wait (0: run it now). */
  delay(now = performance.now()): number {
    return Math.max(0, this.windowMs - (now - this.lastRunAt));
  }

  /** The work ran (started) at `now`. */
  ran(now = performance.now()): void {
    this.lastRunAt = now;
  }
}
