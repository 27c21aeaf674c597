import { NO_CAUSES, type Assignment, type NodeInfo } from '../../pkg/model/index.js';
import type { Store, Versioned } from '../../pkg/store/index.js';

/**
 * A node the test answers for instead of a worker (no Docker): registered
 * as a worker registers, its attempts ended by reportEnd.
 */

const GiB = 2 ** 30;

/** 32 CPUs, 128 GiB and `gpus` T4s named by index, as the simulator's trace nodes name them. */
export function answeredNode(id: string, gpus: number): NodeInfo {
  return {
    id,
    hostname: id,
    capacity: { cpu: 32_000, memory: 128 * GiB, gpuMilli: gpus * 1000 },
    gpus: Array.from({ length: gpus }, (_, index) => ({ index, uuid: '', model: 'T4', memory: 0 })),
    labels: {},
    executors: ['docker'],
    registeredAt: Date.now(),
    version: 'test',
  };
}

/** Reports an attempt's end as its worker does (fenced by the assignment); the leader folds it. An evicted one exits 137. */
export async function reportEnd(store: Store, assignment: Versioned<Assignment>, causes: typeof NO_CAUSES = NO_CAUSES): Promise<void> {
  const end = { result: { type: 'exited' as const, exitCode: causes.evicted !== undefined ? 137 : 0 }, causes, finishedAt: Date.now() };
  const ok = await store.putReport(assignment, { jobId: assignment.value.jobId, attempt: assignment.value.attempt, state: 'Ended', startedAt: Date.now(), end });
  if (!ok) throw new Error(`report of ${assignment.value.jobId} refused`);
}
