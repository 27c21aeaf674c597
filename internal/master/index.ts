export { Master } from './master.js';
export { resolveMasterConfig, type MasterConfig, type MasterFlags } from './config.js';
export { ReportFolder } from './report-folder.js';
