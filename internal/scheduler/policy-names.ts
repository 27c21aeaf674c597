/**
 * The placement policies by name, apart from their code: help texts state
 * them without loading the scheduler (`titan --help` stays a bare start).
 * `policy.ts` keys its factories by these names, so the two cannot differ.
 */
export const POLICY_NAMES = ['binpack', 'spread', 'fgd'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/** Chosen by `titan simulate` on the openb traces: see docs/scheduling.md. */
export const DEFAULT_POLICY: PolicyName = 'fgd';
