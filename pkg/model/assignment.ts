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
  /**
   * Gang replicas only: the port of the node's --port-range this attempt
   * holds (TITAN_PORT), reserved while the assignment exists. Absent when
   * written by an older master.
   */
  port?: number;
  /** Gang replicas only: the replica's rank, so a restarted master knows whose port and node it is (peers of later replicas). */
  rank?: number;
  /** Gang replicas only: its place among the gang's replicas on this node, in rank order (LOCAL_RANK). */
  localRank?: number;
  /**
   * The job as the placement wrote it (`Scheduled`, this attempt), put in the
   * same transaction as the assignment: while the job is unchanged its mod
   * revision is this assignment's create revision, so the worker claims it
   * (the `Running` write) from this copy without reading the job first. Only
   * a guess: the claim still compares the job's revision, and a job changed
   * since (a cancel) fails the compare and is read back. Absent when written
   * by an older master or for a job too large to copy (the worker reads the
   * job then); a cancel or eviction re-puts the assignment with the copy
   * unchanged. Kept encoded, as the job key's bytes (Store.placedJob decodes
   * it): the placement encodes the job once, and readers that do not need it
   * (the master) never decode it.
   */
  job?: Uint8Array;
}
