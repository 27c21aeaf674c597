/**
 * The reference policies `titan simulate` runs beside Titan's own (the FGD
 * artefact's, reimplemented), named apart from their code so help texts
 * can list them without loading it. The master never offers them.
 */
export const REFERENCE_POLICY_NAMES = ['fgd-paper', 'bestfit'] as const;
export type ReferencePolicyName = (typeof REFERENCE_POLICY_NAMES)[number];

export const isReferencePolicy = (name: string): name is ReferencePolicyName => (REFERENCE_POLICY_NAMES as readonly string[]).includes(name);
