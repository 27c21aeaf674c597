export { Master } from './master.js';
export { resolveMasterConfig, type MasterConfig, type MasterFlags } from './config.js';
