import { TitanError } from '../../pkg/model/index.js';
import { createPolicy, policyNames, type JobRequest, type Policy } from '../scheduler/index.js';
import { bestFitPolicy } from './reference-bestfit.js';
import { fgdPaperPolicy } from './reference-fgd.js';
import { isReferencePolicy, REFERENCE_POLICY_NAMES, type ReferencePolicyName } from './reference-names.js';

const REFERENCES: Record<ReferencePolicyName, (traceJobs: readonly JobRequest[]) => Policy> = {
  'fgd-paper': fgdPaperPolicy,
  bestfit: () => bestFitPolicy(),
};

/** Every policy a simulation runs: Titan's, then the references. */
export function simulationPolicyNames(): string[] {
  return [...policyNames(), ...REFERENCE_POLICY_NAMES];
}

/** Throws InvalidInput naming the known policies unless `name` is one. */
export function checkSimulationPolicy(name: string, field = 'policy'): string {
  if (!simulationPolicyNames().includes(name)) {
    throw new TitanError('InvalidInput', `${field}: unknown policy "${name}" (known: ${simulationPolicyNames().join(', ')})`, { field });
  }
  return name;
}

/**
 * A fresh policy for one simulated run. A reference learns its task types
 * from the whole trace, as the artefact does, and scores every feasible node
 * (`fullScan`); Titan's policies run as in the master.
 */
export function createSimulationPolicy(name: string, traceJobs: readonly JobRequest[]): { policy: Policy; fullScan: boolean } {
  if (isReferencePolicy(name)) return { policy: REFERENCES[name](traceJobs), fullScan: true };
  return { policy: createPolicy(name), fullScan: false };
}
