import { TitanError } from '../../pkg/model/index.js';
import { binpackScore, gpuAvoidanceScore, spreadScore, type Scorer } from './scoring.js';

export interface Policy {
  name: string;
  description: string;
  score: Scorer;
  /** The score of a node for a job never drops as the node fills up (lets a pass reuse its last choice). */
  monotone: boolean;
}

const POLICIES: Record<string, Policy> = {
  binpack: {
    name: 'binpack',
    description: 'most-allocated over CPU, memory and GPU; CPU jobs keep off GPU nodes',
    score: (job, node) => binpackScore(job, node) + gpuAvoidanceScore(job, node),
    monotone: true,
  },
  spread: {
    name: 'spread',
    description: 'least-allocated: load spread evenly over nodes',
    score: (job, node) => spreadScore(job, node) + gpuAvoidanceScore(job, node),
    monotone: false,
  },
};

export const DEFAULT_POLICY = 'binpack';

export function policyNames(): string[] {
  return Object.keys(POLICIES);
}

export function getPolicy(name: string): Policy {
  const policy = POLICIES[name];
  if (!policy) {
    throw new TitanError('InvalidInput', `policy: unknown policy "${name}" (known: ${policyNames().join(', ')})`, {
      field: 'policy',
    });
  }
  return policy;
}
