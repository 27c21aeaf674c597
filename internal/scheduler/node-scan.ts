// parse.js, not the model's index: titan's help text imports this module.
import { parsePositiveInteger } from '../../pkg/model/parse.js';

/**
 * `--sample-nodes`, the one knob of the sampled node scan that the master
 * and `titan simulate` share: `all` scores every feasible node (Infinity), N
 * scores the first N feasible nodes from a rotating start (PassPlacer).
 * Absent, the placer takes feasibleNodesToScore of the cluster's size.
 */
export function parseSampleNodes(text: string, field = '--sample-nodes'): number {
  return text.trim() === 'all' ? Infinity : parsePositiveInteger(text, field);
}

/** The option's help text, the same in both programs. */
export const SAMPLE_NODES_HELP = 'feasible nodes scored per placement: N, or all for a full scan (default: a share of the cluster, docs/scheduling.md)';
