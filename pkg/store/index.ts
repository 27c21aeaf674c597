export * from './client.js';
export * from './codec.js';
export * from './errors.js';
export * from './informer.js';
export * from './keys.js';
export * from './store.js';
export * from './txn.js';
export * from './versioned.js';
