export { Worker } from './worker.js';
export { resolveWorkerConfig, type WorkerConfig, type WorkerFlags } from './config.js';
