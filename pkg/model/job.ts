import type { ArraySpec } from './array.js';
import type { Dependency } from './dependency.js';
import type { GangSpec } from './gang.js';
import type { Resources } from './resources.js';

export type JobKind = 'docker' | 'shell';

export const JOB_STATES = ['Pending', 'Scheduled', 'Running', 'Succeeded', 'Failed', 'Cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** What the user asked for. Never changes after submit. */
export interface JobSpec {
  name: string;
  kind: JobKind;
  /** Container image; docker jobs only. */
  image?: string;
  /**
   * docker: argv for the container (empty: the image's default command).
   * shell: argv of the host process (a `--shell` script is ['/bin/sh', '-c', script]).
   */
  command: string[];
  env: Record<string, string>;
  resources: Resources;
  /** Higher runs first. */
  priority: number;
  labels: Record<string, string>;
  /** How many times a failed run (non-zero exit, timeout, lost container) is retried. */
  retries?: number;
  /** A run longer than this is stopped and fails with reason Timeout. */
  timeoutMs?: number;
  /** The job runs only on GPUs of one of these models (`--gpu-model V100M16|V100M32`). */
  gpuModels?: string[];
  /** The job runs only on nodes carrying every one of these labels (`--node-selector zone=a`). */
  nodeSelector?: Record<string, string>;
  /** The queue the job is scheduled in (`--queue`); absent means the default queue. */
  queue?: string;
  /**
   * Whether a running attempt may be evicted for a higher-priority job of its
   * queue (`--preemptible` / `--no-preemptible`). Absent: only while it runs
   * on capacity its queue borrowed beyond its quota. `false` also protects it
   * from reclaim (docs/queues.md, "Preemption and reclaim").
   */
  preemptible?: boolean;
  /** A running attempt younger than this is never evicted (`--min-runtime`). */
  minRuntimeMs?: number;
  /** Set on each replica of a gang (`--replicas`): its group, rank and the group's placement rules. */
  gang?: GangSpec;
  /** Set on each task of an array (`--array`): the array, this task's index, the array's size and `%max`. */
  array?: ArraySpec;
  /** `--after`: the job is not placed before these conditions on other jobs hold (pkg/model/dependency.ts). */
  after?: Dependency[];
}

/**
 * Why an attempt ended without success, as the retry policy sees it.
 * `evicted`: the scheduler took the capacity back (reclaim, preemption); the
 * job is Pending again at no cost to any retry budget.
 */
export type FailureKind = 'exit' | 'timeout' | 'lost-container' | 'start-failed' | 'node-lost' | 'evicted';

/** One finished attempt, kept in the job so `titan status` can show its history. */
export interface AttemptRecord {
  attempt: number;
  node?: string;
  scheduledAt?: number;
  startedAt?: number;
  finishedAt: number;
  exitCode?: number;
  /** How the attempt left the job; an evicted attempt is `Pending` (the job went back to the queue). */
  state: JobState;
  /** For an evicted attempt, who took the capacity: `Reclaimed by queue X`, `Preempted by job Y`. */
  reason?: string;
  failure?: FailureKind;
  /** Bytes of log the attempt stored, as its worker counted them: the job's log budget spans all attempts. */
  logBytes?: number;
}

/** A job as stored in etcd: the spec plus everything the cluster learned. */
export interface Job extends JobSpec {
  id: string;
  state: JobState;
  /** Why the job is in its state, when that is not obvious. */
  reason?: string;
  /** When the master last wrote a pending job's `reason` (it refreshes figures in a reason only so often). */
  reasonAt?: number;
  createdAt: number;
  scheduledAt?: number;
  startedAt?: number;
  finishedAt?: number;
  node?: string;
  /** GPU device ids (UUIDs, or indexes where no UUID is known) assigned to this attempt. */
  gpuDevices?: string[];
  /** 0 until first placed; each placement increments it. */
  attempt: number;
  exitCode?: number;
  /** Set by `titan cancel` on a job that a worker already holds. */
  cancelRequested?: boolean;
  /** Why it was cancelled, when not by its user (a failed gang cancels the other replicas). */
  cancelReason?: string;
  /** A requeued job is not placed before this time (retry backoff). */
  retryAt?: number;
  /** Earlier attempts, oldest first. */
  history?: AttemptRecord[];
  /** Failed attempts counted against `retries` (reset by `titan retry`). */
  failureCount?: number;
  /** Attempts lost with their node, counted against the cluster's node-lost retries. */
  nodeLostCount?: number;
}

export const FINAL_STATES: ReadonlySet<JobState> = new Set(['Succeeded', 'Failed', 'Cancelled']);

export function isFinal(state: JobState): boolean {
  return FINAL_STATES.has(state);
}

/** The node an attempt of the job ran (or runs) on, where its output is stored; undefined if unknown. */
export function nodeOfAttempt(job: Job, attempt: number): string | undefined {
  if (attempt === job.attempt) return job.node ?? job.history?.find((h) => h.attempt === attempt)?.node;
  return job.history?.find((h) => h.attempt === attempt)?.node;
}
