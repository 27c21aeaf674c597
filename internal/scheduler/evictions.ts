import { queueOf, withDefaultQueue, type Queue } from '../../pkg/model/index.js';
import { Preemptor, type PreemptionMode, type PreemptionOptions, type PreemptorJob, type RunningJob, type Victim } from './preemption.js';
import type { NodeView } from './types.js';

/** What eviction planning reads of the snapshot, after the pass's placements and gang restarts. */
export interface EvictionSnapshot {
  nodeViews(): readonly NodeView[];
  runningJobs(): RunningJob[];
  /** Whether any running job is marked preemptible (priority preemption has victims to consider). */
  hasPreemptible(): boolean;
}

/** Attempts to evict so that jobs of a pass that fit nowhere get room. */
export interface EvictionPlan {
  victims: Victim[];
  /** Each victim's mode, by job id. */
  modeOf: Map<string, PreemptionMode>;
  /** Which victims each preempting job asked for, on which node, and its queue. */
  preemptors: { jobId: string; queue: string; mode: PreemptionMode; nodeId: string; victims: string[] }[];
}

/**
 * Room by eviction for the jobs a pass left unplaced (PassPlan.unplaced):
 * reclaim from queues over their quota for a queue below it, or priority
 * preemption of jobs marked preemptible. The planner simulates each
 * eviction set on a copy of the snapshot and only returns one that makes
 * room. The master runs it after the pass's placements are queued and its
 * gang restarts committed, and commits the victims in one transaction; the
 * simulator replays the same step. Undefined: nothing to evict.
 */
export function planEvictions(
  state: EvictionSnapshot,
  plan: { unplaced: readonly PreemptorJob[]; truncated: boolean },
  queues: readonly Queue[],
  now: number,
  options: PreemptionOptions,
): EvictionPlan | undefined {
  if (plan.unplaced.length === 0 || plan.truncated) return undefined;
  const reclaimable = queues.some((q) => q.quota.cpu > 0 || q.quota.memory > 0 || q.quota.gpuMilli > 0);
  if (!reclaimable && !state.hasPreemptible()) return undefined;
  const preemptor = new Preemptor(state.nodeViews(), state.runningJobs(), withDefaultQueue(queues), options);
  const victims: Victim[] = [];
  const modeOf = new Map<string, PreemptionMode>();
  const preemptors: EvictionPlan['preemptors'] = [];
  for (const job of plan.unplaced) {
    const result = preemptor.plan(job, now);
    if (result.kind !== 'evict') continue;
    victims.push(...result.victims);
    for (const v of result.victims) modeOf.set(v.jobId, result.mode);
    preemptors.push({ jobId: job.id, queue: queueOf(job), mode: result.mode, nodeId: result.nodeId, victims: result.victims.map((v) => v.jobId) });
  }
  return victims.length === 0 ? undefined : { victims, modeOf, preemptors };
}
