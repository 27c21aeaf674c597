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
  /**
   * What queue accounting and preemption need of the job, copied at placement
   * so a restarted master rebuilds them from assignments alone.
   */
  queue?: string;
  priority?: number;
  preemptible?: boolean;
  minRuntimeMs?: number;
  /** The job's --timeout: the attempt ends by assignedAt + timeoutMs (backfill counts on it). */
  timeoutMs?: number;
  /** The gang the job is a replica of: a failed replica restarts its running siblings. */
  gang?: string;
  /** Set when the job was cancelled while the worker holds it. */
  cancel?: { requestedAt: number; graceMs: number };
  /**
   * Set by the leading master to take the capacity back (Store.evictJobs):
   * the worker stops the run like a cancel and the job goes back to Pending,
   * with `reason` (`Reclaimed by queue X`, `Preempted by job Y`) in its history.
   */
  evict?: { requestedAt: number; graceMs: number; reason: string };
  /**
   * Gang replicas only: `host:port` of every replica in rank order (gangPeers),
   * '' for a rank not placed yet. The worker passes it on as TITAN_PEERS.
   */
  peers?: string[];
}
