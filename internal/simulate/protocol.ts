import type { TraceJob } from './trace.js';

/** A small seeded generator (mulberry32): the same seed gives the same run everywhere. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The arrival order of the FGD paper's protocol: the trace sorted by name,
 * shuffled with the seed, then tasks drawn with replacement from the trace
 * appended until the requested GPU reaches `tune` × the cluster's GPU.
 */
export function arrivals(jobs: readonly TraceJob[], clusterGpuMilli: number, seed: number, tune: number): TraceJob[] {
  const random = seededRandom(seed);
  const sorted = [...jobs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const order = [...sorted];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  let requested = order.reduce((sum, j) => sum + j.resources.gpuMilli, 0);
  const target = tune * clusterGpuMilli;
  if (!sorted.some((j) => j.resources.gpuMilli > 0)) return order;
  for (let n = 0; requested < target; n++) {
    const picked = sorted[Math.floor(random() * sorted.length)];
    order.push({ ...picked, id: `${picked.id}-again-${n}`, name: `${picked.name}-again-${n}` });
    requested += picked.resources.gpuMilli;
  }
  return order;
}
