import { PassPlacer } from './pass-placer.js';
import type { Policy } from './policy.js';
import type { JobRequest, NodeView, NoPlacement, PlacementChoice } from './types.js';

/**
 * The placement pipeline for one job over every node: feasibility checks
 * (each rejection counted under its reason), the policy's score, and the
 * best node (ties: lowest id, so the same snapshot always gives the same answer).
 */
export function chooseNode(job: JobRequest, nodes: Iterable<NodeView>, policy: Policy): PlacementChoice | NoPlacement {
  return new PassPlacer([...nodes], policy, { sampleSize: Infinity }).place(job);
}

export function isPlaced(result: PlacementChoice | NoPlacement): result is PlacementChoice {
  return (result as PlacementChoice).nodeId !== undefined;
}
