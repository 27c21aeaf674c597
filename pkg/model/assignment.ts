import type { Resources } from './resources.js';

/**
 * The master's instruction to one node to run one attempt of a job. Its
 * presence under a node is that node's claim on the resources; the worker
 * deletes it when the attempt ends.
 */
export interface Assignment {
  jobId: string;
  nodeId: string;
  attempt: number;
  resources: Resources;
  gpuDevices: string[];
  assignedAt: number;
  /** Set when the job was cancelled while the worker holds it. */
  cancel?: { requestedAt: number; graceMs: number };
}
