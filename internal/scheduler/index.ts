export * from './allocation.js';
export * from './feasibility.js';
export * from './pass-placer.js';
export * from './place.js';
export * from './policy.js';
export * from './reasons.js';
export * from './scoring.js';
export * from './types.js';
