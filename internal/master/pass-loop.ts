import { CoalescingWindow } from '../../pkg/concurrency/coalescing-window.js';

/**
 * Passes asked for within this long of the last one's start wait for it to
 * pass: under a stream of short jobs, the ends (and submissions) of several
 * share one pass instead of paying one each. A pass asked for after a quiet
 * window starts at once, so a lone job waits for nothing.
 */
export const PASS_WINDOW_MS = 5;
/**
 * The window is at least this many times as long as the last pass took (a
 * long queue on a full cluster makes every pass walk it), so passes take at
 * most about a quarter of the master's time however fast jobs end...
 */
export const PASS_COST_FACTOR = 4;
/** ...up to this long. */
export const MAX_PASS_WINDOW_MS = 50;

/**
 * When the leader runs its scheduling passes: one at a time, again while
 * more were asked for, coalesced by PASS_WINDOW_MS, and at a time a pass
 * named (a retry, a backoff's end).
 */
export class PassLoop {
  private requested = false;
  private loop: Promise<void> | undefined;
  private windowTimer: NodeJS.Timeout | undefined;
  private laterTimer: NodeJS.Timeout | undefined;
  private lastPassMs = 0;
  private readonly window = new CoalescingWindow(() => Math.min(MAX_PASS_WINDOW_MS, Math.max(PASS_WINDOW_MS, PASS_COST_FACTOR * this.lastPassMs)));

  /**
   * @param pass one pass; true when it left work it could not finish (a plan
   *   cut short), to be gone on with at once
   * @param canRun whether passes may run now (synced, leading, not stopped)
   */
  constructor(
    private readonly pass: () => Promise<boolean>,
    private readonly canRun: () => boolean,
  ) {}

  /** Asks for a pass: now, or when the window ends. */
  request(): void {
    this.requested = true;
    if (this.loop || this.windowTimer || !this.canRun()) return;
    const wait = this.window.delay();
    if (wait === 0) {
      this.start();
      return;
    }
    this.windowTimer = setTimeout(() => {
      this.windowTimer = undefined;
      this.start();
    }, wait);
  }

  /** Asks for a pass in `ms` (the earlier such time is replaced). */
  requestIn(ms: number): void {
    clearTimeout(this.laterTimer);
    this.laterTimer = setTimeout(() => this.request(), Math.max(0, ms));
  }

  /** Resolves once no pass runs; none starts after (canRun must say no by then). */
  async stop(): Promise<void> {
    clearTimeout(this.windowTimer);
    clearTimeout(this.laterTimer);
    this.windowTimer = this.laterTimer = undefined;
    await this.loop;
  }

  private start(): void {
    if (this.loop || !this.canRun()) return;
    this.loop = this.runWhileRequested().finally(() => {
      this.loop = undefined;
      if (this.requested) this.request();
    });
  }

  private async runWhileRequested(): Promise<void> {
    while (this.requested && this.canRun()) {
      this.requested = false;
      const started = performance.now();
      this.window.ran(started);
      // A plan cut short goes on at once; anything else asked for meanwhile waits for the window.
      const more = await this.pass();
      this.lastPassMs = performance.now() - started;
      if (!more) return;
      this.requested = true;
    }
  }
}
