import {
  arrayEnv,
  formatGpu,
  MILLI_PER_GPU,
  reservedEnvKey,
  splitHostPort,
  TitanError,
  type Assignment,
  type ExecutionResult,
  type ExecutorKind,
  type GangSpec,
  type Job,
  type LogOffsets,
  type LogStream,
} from '../../pkg/model/index.js';

export type { ExecutionResult } from '../../pkg/model/index.js';

/** What a later worker process needs to find a run again (kept in the run journal). */
export interface RunHandle {
  containerId?: string;
  /** Process (and process group) id of a shell run. */
  pid?: number;
  /** The process's start time as the kernel reports it: tells our process from a reused pid. */
  procStart?: string;
}

/** One started run of a job attempt. */
export interface Execution {
  /** When the run started (epoch ms; Docker's own start time for a re-attached container). Timeouts count from here. */
  readonly startedAt: number;
  readonly handle: RunHandle;
  /**
   * Resolves once the run ended and all its output was handed to `output`.
   * What is left of it (a stopped container) stays until release(). Never rejects.
   */
  readonly exited: Promise<ExecutionResult>;
  /** SIGTERM, then SIGKILL after graceMs (0: SIGKILL at once); resolves once the signal(s) were delivered. Never rejects. */
  stop(graceMs: number): Promise<void>;
  /** Removes what is left of the run; resolves only once it is confirmed gone, so its resources are really free. */
  release(): Promise<void>;
  /**
   * Stops following the run without stopping it (the worker is leaving and the
   * run should survive it). `exited` may then never resolve.
   */
  detach(): void;
}

/** Output of a run, as text. */
export type OutputHandler = (stream: LogStream, data: string) => void;

export interface Executor {
  kind: ExecutorKind;
  /**
   * Starts one attempt. Rejects with a TitanError whose message is the reason
   * shown to the user when the job cannot start. An executor that queues
   * starts asks `wanted` when the attempt's turn comes, and starts nothing
   * (resolves undefined) once it says no: a job cancelled while it waited.
   */
  start(job: Job, assignment: Assignment, output: OutputHandler, wanted?: () => boolean): Promise<Execution | undefined>;
  /**
   * Follows again a run an earlier worker process of this node started, with
   * the output that follows the first `skip` bytes of each stream (what is
   * already stored);
   * undefined when nothing of it is left. Executors that cannot re-attach
   * (host processes) leave this out.
   */
  reattach?(job: Job, assignment: Assignment, output: OutputHandler, skip: LogOffsets | undefined): Promise<Execution | undefined>;
  /** Gets rid of whatever is left of this attempt (a container, an orphaned process group). */
  abandon(job: Job, assignment: Assignment, handle?: RunHandle): Promise<void>;
}

/**
 * The env of a run: a gang replica's framework variables (MASTER_ADDR, RANK...),
 * then the job's own env, then Titan's variables. A reserved key in
 * the job's env (NVIDIA_*, CUDA_VISIBLE_DEVICES, TITAN_*) can only come from
 * a record written around `titan submit`, which refuses it: the attempt then
 * fails to start, rather than run with GPUs or an identity it was not given.
 * The framework variables are not reserved: a job that sets one keeps its own.
 */
export function runEnv(job: Job, assignment: Assignment): Record<string, string> {
  const reserved = reservedEnvKey(job.env);
  if (reserved !== undefined) {
    throw new TitanError(
      'InvalidInput',
      `env ${reserved} is reserved: NVIDIA_*, CUDA_VISIBLE_DEVICES and TITAN_* are set by Titan only; submit the job again without it`,
    );
  }
  return { ...(job.gang ? frameworkEnv(job.gang, assignment) : {}), ...job.env, ...titanEnv(job, assignment) };
}

/**
 * The variables every run sees, on top of the job's own env: who it is, and
 * the exact GPU devices it was given. A job holding a share of one device
 * also gets TITAN_GPU_SHARE (e.g. 0.25): nothing enforces the share, so the
 * process must know it to size itself (memory fraction, batch size). A gang
 * replica also gets its rank, the group's size and id, and its peers; an
 * array task its index, the array's id and its size.
 */
export function titanEnv(job: Job, assignment: Assignment): Record<string, string> {
  const env: Record<string, string> = {
    TITAN_JOB_ID: job.id,
    TITAN_ATTEMPT: String(assignment.attempt),
    TITAN_NODE_ID: assignment.nodeId,
  };
  if (assignment.gpuDevices.length > 0) {
    const ids = assignment.gpuDevices.join(',');
    env.NVIDIA_VISIBLE_DEVICES = ids;
    env.CUDA_VISIBLE_DEVICES = ids;
    const milli = assignment.resources.gpuMilli;
    if (milli > 0 && milli < MILLI_PER_GPU) env.TITAN_GPU_SHARE = formatGpu(milli);
  }
  if (job.gang) Object.assign(env, gangEnv(job.gang, assignment));
  if (job.array) Object.assign(env, arrayEnv(job.array));
  return env;
}

/**
 * A gang replica's view of its group (docs/gangs.md): TITAN_PEERS lists
 * `host:port` of every rank in rank order, and TITAN_PORT is this replica's
 * own port (the assignment's, reserved for it on this node; from an older
 * master, its own entry's), the one it is expected to listen on. Peers come
 * from the assignment (the master knows where every replica went); an older
 * master that sent none leaves them out rather than inventing them.
 */
function gangEnv(gang: GangSpec, assignment: Assignment): Record<string, string> {
  const env: Record<string, string> = {
    TITAN_GANG_ID: gang.id,
    TITAN_RANK: String(gang.rank),
    TITAN_WORLD_SIZE: String(gang.size),
  };
  const peers = assignment.peers;
  if (peers && peers.length > 0) {
    env.TITAN_PEERS = peers.join(',');
    const port = assignment.port ?? splitHostPort(peers[gang.rank] ?? '')?.port;
    if (port !== undefined) env.TITAN_PORT = String(port);
  }
  return env;
}

/**
 * The variables distributed-training frameworks read (PyTorch's env://
 * rendezvous and the like): rank 0's address and port, the rank, the world
 * size and the rank among the gang's replicas on this node. MASTER_* only
 * once rank 0 is placed (its peers entry is set).
 */
export function frameworkEnv(gang: GangSpec, assignment: Assignment): Record<string, string> {
  const env: Record<string, string> = { RANK: String(gang.rank), WORLD_SIZE: String(gang.size) };
  if (assignment.localRank !== undefined) env.LOCAL_RANK = String(assignment.localRank);
  const master = splitHostPort(assignment.peers?.[0] ?? '');
  if (master) {
    env.MASTER_ADDR = master.host;
    env.MASTER_PORT = String(master.port);
  }
  return env;
}

/** The error text Docker or Node gave, without transport prefixes. */
export function errorMessage(err: unknown): string {
  const json = (err as { json?: { message?: unknown } } | undefined)?.json;
  if (json && typeof json.message === 'string') return json.message.trim();
  const message = (err instanceof Error ? err.message : String(err)).trim();
  // docker-modem's "(HTTP code 500) server error - <daemon message>" when it did not parse the body.
  return message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}
