import { describe, expect, it } from 'vitest';
import { CoalescingWindow } from '../../pkg/concurrency/coalescing-window.js';
import { MAX_PASS_WINDOW_MS, PASS_COST_FACTOR, PASS_WINDOW_MS, PassLoop } from '../../internal/master/pass-loop.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `passes` holds `count` passes (a loaded machine runs timers late), at most a second. */
async function passesReach(passes: readonly number[], count: number): Promise<void> {
  for (const until = performance.now() + 1000; passes.length < count && performance.now() < until; ) await sleep(2);
}

describe('CoalescingWindow', () => {
  it('runs at once after a quiet window, and otherwise waits for the window to end', () => {
    const window = new CoalescingWindow(5);
    expect(window.delay(1000)).toBe(0);
    window.ran(1000);
    expect(window.delay(1002)).toBe(3);
    expect(window.delay(1005)).toBe(0);
    expect(window.delay(9999)).toBe(0);
  });
});

describe('PassLoop: the leader\'s passes, coalesced', () => {
  const loop = (passes: number[], options: { canRun?: () => boolean; truncate?: () => boolean; passMs?: number } = {}): PassLoop =>
    new PassLoop(
      async () => {
        passes.push(performance.now());
        if (options.passMs) await sleep(options.passMs);
        return options.truncate?.() ?? false;
      },
      options.canRun ?? (() => true),
    );

  it('starts a lone pass at once', () => {
    const passes: number[] = [];
    loop(passes).request();
    expect(passes).toHaveLength(1);
  });

  it('folds many requests during a pass into one more pass, no sooner than the window after the first began', async () => {
    const passes: number[] = [];
    const l = loop(passes, { passMs: 1 });
    l.request();
    for (let i = 0; i < 20; i++) l.request();
    await passesReach(passes, 2);
    await sleep(PASS_WINDOW_MS * 4);
    expect(passes).toHaveLength(2);
    expect(passes[1] - passes[0]).toBeGreaterThanOrEqual(PASS_WINDOW_MS - 1);
    await l.stop();
  });

  it('a burst of requests right after a pass waits for the window and shares one pass', async () => {
    const passes: number[] = [];
    const l = loop(passes);
    l.request();
    await sleep(0);
    for (let i = 0; i < 20; i++) l.request();
    expect(passes).toHaveLength(1);
    await sleep(PASS_WINDOW_MS * 4);
    expect(passes).toHaveLength(2);
    await l.stop();
  });

  it('widens the window to a multiple of what the last pass took, up to a cap', async () => {
    const passes: number[] = [];
    const l = loop(passes, { passMs: 8 });
    l.request();
    await sleep(10);
    l.request();
    await passesReach(passes, 2);
    expect(passes).toHaveLength(2);
    // At least four times the first pass's 8 ms after its start, not the 5 ms floor. Node's timers
    // run on the loop's millisecond clock, so the 8 ms sleep and the window's timer may each end up to 1 ms early.
    expect(passes[1] - passes[0]).toBeGreaterThanOrEqual(PASS_COST_FACTOR * (8 - 1) - 1);
    expect(passes[1] - passes[0]).toBeLessThan(MAX_PASS_WINDOW_MS + 30);
    await l.stop();
  });

  it('goes on at once with a plan cut short, then stops when nothing more is asked', async () => {
    const passes: number[] = [];
    let slices = 3;
    const l = loop(passes, { truncate: () => --slices > 0 });
    l.request();
    await sleep(1);
    expect(passes).toHaveLength(3);
    expect(passes[2] - passes[0]).toBeLessThan(PASS_WINDOW_MS);
    await sleep(PASS_WINDOW_MS * 3);
    expect(passes).toHaveLength(3);
  });

  it('runs nothing while it may not, and nothing asked for later once stopped', async () => {
    const passes: number[] = [];
    let may = false;
    const l = loop(passes, { canRun: () => may });
    l.request();
    expect(passes).toHaveLength(0);
    may = true;
    l.request();
    expect(passes).toHaveLength(1);
    l.requestIn(5);
    await l.stop();
    await sleep(15);
    expect(passes).toHaveLength(1);
  });
});
