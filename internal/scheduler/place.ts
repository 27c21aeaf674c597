import { chooseGpuDevices } from './allocation.js';
import { firstRejection } from './feasibility.js';
import type { Policy } from './policy.js';
import type { JobRequest, NodeView, NoPlacement, PlacementChoice } from './types.js';

/**
 * The placement pipeline for one job: filter every node through the
 * feasibility checks (counting each rejection under its reason), score the
 * feasible ones with the policy, and take the best (ties: lowest node id, so
 * the same snapshot always gives the same answer).
 */
export function chooseNode(job: JobRequest, nodes: Iterable<NodeView>, policy: Policy): PlacementChoice | NoPlacement {
  let best: NodeView | undefined;
  let bestScore = -Infinity;
  const rejected: NoPlacement['rejected'] = {};
  let considered = 0;
  for (const node of nodes) {
    considered++;
    const reason = firstRejection(job, node);
    if (reason) {
      rejected[reason] = (rejected[reason] ?? 0) + 1;
      continue;
    }
    const score = policy.score(job, node);
    if (score > bestScore || (score === bestScore && best !== undefined && node.id < best.id)) {
      best = node;
      bestScore = score;
    }
  }
  if (!best) return { rejected, nodesConsidered: considered };
  return { nodeId: best.id, gpuDevices: chooseGpuDevices(job, best), score: bestScore };
}

export function isPlaced(result: PlacementChoice | NoPlacement): result is PlacementChoice {
  return (result as PlacementChoice).nodeId !== undefined;
}
