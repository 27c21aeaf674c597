import { TitanError } from '../../pkg/model/index.js';
import { FRAGMENTATION_DESCRIPTION, fragmentationPolicy } from './fgd-policy.js';
import { POLICY_NAMES, type PolicyName } from './policy-names.js';
import { binpackScore, gpuAvoidanceScore, spreadScore } from './scoring.js';
import type { JobRequest, NodeView } from './types.js';

/**
 * A placement policy: ranks feasible nodes for a job (higher is better).
 * A policy may learn from submissions (observe); each master and each
 * simulation run has its own instance.
 */
export interface Policy {
  readonly name: string;
  readonly description: string;
  score(job: JobRequest, node: NodeView): number;
  /** The job's score on a node never drops as the node fills up (lets a pass reuse its last choice). */
  isMonotone(job: JobRequest): boolean;
  /** Called once for every job submitted, before it is placed. */
  observe(job: JobRequest): void;
  /**
   * Changes whenever the policy's scores may have changed other than through
   * the node or the job (it learned from submissions). Absent: a score
   * depends only on the node's state and the job's shape (PassPlacer keeps
   * scores by both, so a policy must read nothing else of the job).
   */
  scoresVersion?(): number;
  /** The devices (indexes into node.gpus) the job gets on a node it scored; the lowest-index fit if absent. */
  chooseGpuIndexes?(job: JobRequest, node: NodeView): number[] | undefined;
}

export interface PolicyFactory {
  description: string;
  create: () => Policy;
}

function stateless(name: string, description: string, score: Policy['score'], monotone: boolean): PolicyFactory {
  return { description, create: () => ({ name, description, score, isMonotone: () => monotone, observe: () => {} }) };
}

const POLICIES: Record<PolicyName, PolicyFactory> = {
  binpack: stateless(
    'binpack',
    'most-allocated over CPU, memory and GPU; CPU jobs keep off GPU nodes',
    (job, node) => binpackScore(job, node) + gpuAvoidanceScore(job, node),
    true,
  ),
  spread: stateless(
    'spread',
    'least-allocated: load spread evenly over nodes',
    (job, node) => spreadScore(job, node) + gpuAvoidanceScore(job, node),
    false,
  ),
  fgd: { description: FRAGMENTATION_DESCRIPTION, create: fragmentationPolicy },
};

export { DEFAULT_POLICY, POLICY_NAMES, type PolicyName } from './policy-names.js';

export function policyNames(): string[] {
  return [...POLICY_NAMES];
}

const isPolicyName = (name: string): name is PolicyName => (POLICY_NAMES as readonly string[]).includes(name);

/** A fresh instance of the named policy. */
export function createPolicy(name: string): Policy {
  if (!isPolicyName(name)) {
    throw new TitanError('InvalidInput', `policy: unknown policy "${name}" (known: ${policyNames().join(', ')})`, {
      field: 'policy',
    });
  }
  return POLICIES[name].create();
}
