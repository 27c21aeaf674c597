import { GoRand } from './go-rand.js';
import type { TraceJob, TraceNode } from './trace.js';

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

export interface ProtocolRun {
  /** The tasks in arrival order. */
  arrivals: TraceJob[];
  /** The nodes, in the given order, renamed as the artefact names them (the name breaks ties between equal scores). */
  nodes: TraceNode[];
}

const byName = <T extends { name?: string; id: string }>(a: T, b: T): number => {
  const x = a.name ?? a.id;
  const y = b.name ?? b.id;
  return x < y ? -1 : x > y ? 1 : 0;
};

/**
 * Draws spent between the tuning and the node names in the artefact's runs:
 * its scheduler starts there, and each of its informers draws once (a watch
 * timeout). Ten is what reproduces the published per-seed figures exactly.
 */
const STARTUP_DRAWS = 10;

/** The per-device share as the artefact records it (1000 for whole GPUs). */
const perDeviceMilli = (job: TraceJob): number => (job.resources.gpuMilli === 0 ? 0 : Math.min(job.resources.gpuMilli, 1000));

/**
 * One seed of the FGD artefact's protocol, draw for draw (its simulator seeds
 * Go's math/rand with the seed, then): one draw is spent on a log line; the
 * trace, sorted by name, is shuffled; tasks drawn with replacement from the
 * name-sorted trace are appended while the requested GPU stays within
 * `tune` × the cluster's (the check adds a task's per-device share, as the
 * artefact's does; a trace that asks for more has random tasks removed
 * instead); ten draws go to the scheduler's start-up; then each node, in
 * name order, gets a random rank as a four-digit name prefix.
 */
export function protocolRun(jobs: readonly TraceJob[], nodes: readonly TraceNode[], seed: number, tune: number): ProtocolRun {
  const random = new GoRand(seed);
  random.int63();
  const sorted = [...jobs].sort(byName);
  let order = [...sorted];
  random.shuffle(order.length, (i, j) => {
    [order[i], order[j]] = [order[j], order[i]];
  });
  const clusterGpuMilli = nodes.reduce((sum, n) => sum + n.gpus * 1000, 0);
  const target = tune * clusterGpuMilli;
  let requested = order.reduce((sum, j) => sum + j.resources.gpuMilli, 0);
  if (requested > 0 && clusterGpuMilli > 0) {
    if (requested > target) {
      order = [...order];
      while (requested > target) {
        const [removed] = order.splice(random.intn(order.length), 1);
        requested -= removed.resources.gpuMilli;
      }
    } else if (requested < target) {
      for (let n = 0; ; n++) {
        const picked = sorted[random.intn(sorted.length)];
        if (requested + perDeviceMilli(picked) > target) break;
        requested += picked.resources.gpuMilli;
        order.push({ ...picked, id: `${picked.id}-tuned-${n}`, name: `${picked.name}-tuned-${n}` });
      }
    }
  }
  for (let i = 0; i < STARTUP_DRAWS; i++) random.int63();
  const byNodeName = [...nodes].sort(byName);
  const ranks = random.perm(byNodeName.length);
  const renamed = new Map(byNodeName.map((node, i) => [node, `${String(ranks[i]).padStart(4, '0')}-${node.id}`]));
  return { arrivals: order, nodes: nodes.map((node) => ({ ...node, id: renamed.get(node) ?? node.id })) };
}

/** The arrival order alone (see protocolRun). */
export function arrivals(jobs: readonly TraceJob[], nodes: readonly TraceNode[], seed: number, tune: number): TraceJob[] {
  return protocolRun(jobs, nodes, seed, tune).arrivals;
}
