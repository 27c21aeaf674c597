import type { Master } from '../../internal/master/index.js';
import { parseExposition, sampleValue } from './prometheus.js';
import { waitFor } from './wait.js';

const PASS_COUNT = 'titan_scheduling_pass_duration_seconds_count';

/** How many scheduling passes an in-process master has planned (its pass-duration histogram's count). */
export async function passCount(master: Master): Promise<number> {
  const text = await master.metrics.registry.getSingleMetricAsString('titan_scheduling_pass_duration_seconds');
  return sampleValue(parseExposition(text), PASS_COUNT) ?? 0;
}

/**
 * Waits until `seen` holds in the master's snapshot, then until the leader has
 * planned a pass after that moment: what that pass did not place, the master
 * decided not to place, knowing what `seen` checked. A pass is planned only
 * when something changes, so `nudge` makes a change that asks for one (e.g. a
 * job that fits nowhere). Planning is synchronous and the count grows right
 * after it, so a count above the one read after `seen` held is such a pass.
 */
export async function passPlannedAfter(master: Master, what: string, seen: () => boolean, nudge: () => Promise<unknown>, timeoutMs?: number): Promise<void> {
  await waitFor(what, () => seen(), timeoutMs);
  const before = await passCount(master);
  await nudge();
  await waitFor(`a scheduling pass after ${what}`, async () => (await passCount(master)) > before, timeoutMs);
}
