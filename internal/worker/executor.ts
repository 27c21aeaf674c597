import type { Assignment, ExecutorKind, Job, LogStream } from '../../pkg/model/index.js';

export interface ExecutionResult {
  exitCode: number;
  /** Why the run ended abnormally, in words for the user (becomes the job's reason). */
  error?: string;
}

/** One started run of a job attempt. */
export interface Execution {
  /** Resolves once the run ended and all its output was handed to `output`. Never rejects. */
  exited: Promise<ExecutionResult>;
  /** SIGTERM, then SIGKILL after graceMs; resolves once the signal(s) were delivered. Never rejects. */
  stop(graceMs: number): Promise<void>;
  /**
   * Stops following the run without stopping it (the worker is leaving and the
   * run should survive it). `exited` may then never resolve.
   */
  detach(): void;
}

export type OutputHandler = (stream: LogStream, data: string) => void;

export interface Executor {
  kind: ExecutorKind;
  /**
   * Starts one attempt. Rejects with a TitanError whose message is the reason
   * shown to the user when the job cannot start.
   */
  start(job: Job, assignment: Assignment, output: OutputHandler): Promise<Execution>;
  /**
   * Gets rid of whatever an earlier worker process left running for this
   * attempt (re-attaching to it would go here instead).
   */
  abandon(job: Job, assignment: Assignment): Promise<void>;
}

/** The variables every run sees, on top of the job's own env. */
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
