import { gpuDeviceCount, MILLI_PER_GPU } from '../../pkg/model/index.js';
import type { JobRequest } from '../scheduler/index.js';

/**
 * A task as the FGD artefact sees it when it measures fragmentation: CPU and
 * GPU only (memory is not part of it), the GPU as devices × a per-device
 * share, and the allowed GPU models as written in the trace.
 */
export interface TaskType {
  cpu: number;
  /** Milli-GPU per device (1000 for whole GPUs, 0 for CPU tasks). */
  milli: number;
  devices: number;
  /** Allowed models joined by "|", empty for any. */
  models: string;
}

export interface TypicalTask extends TaskType {
  /** Share of the trace's tasks of this type, renormalized over the typical ones. */
  weight: number;
}

/** Kubernetes schedules a container with no CPU request as if it asked for 100 millicores. */
const DEFAULT_MILLI_CPU = 100;

export function taskTypeOf(job: JobRequest): TaskType {
  const gpu = job.resources.gpuMilli;
  return {
    cpu: job.resources.cpu === 0 ? DEFAULT_MILLI_CPU : job.resources.cpu,
    milli: gpu === 0 ? 0 : Math.min(gpu, MILLI_PER_GPU),
    devices: gpuDeviceCount(gpu),
    models: job.gpuModels?.join('|') ?? '',
  };
}

const keyOf = (t: TaskType): string => `${t.cpu}|${t.milli}|${t.devices}|${t.models}`;

/** The artefact's order of types: by CPU, then share, devices and models. */
function lessType(a: TaskType, b: TaskType): boolean {
  if (a.cpu !== b.cpu) return a.cpu < b.cpu;
  if (a.milli !== b.milli) return a.milli < b.milli;
  if (a.devices !== b.devices) return a.devices < b.devices;
  return a.models < b.models;
}

/**
 * The task types the artefact measures fragmentation against ("typical
 * pods", with its experiments' settings: CPU tasks included, the most
 * frequent types up to 95% of tasks): types by decreasing count (ties: the
 * larger type first), cut once they cover `coverPercent` of the trace, their
 * shares renormalized to sum to 1.
 */
export function typicalTasks(jobs: readonly JobRequest[], coverPercent = 95): TypicalTask[] {
  const counts = new Map<string, { type: TaskType; count: number }>();
  for (const job of jobs) {
    const type = taskTypeOf(job);
    const entry = counts.get(keyOf(type));
    if (entry) entry.count++;
    else counts.set(keyOf(type), { type, count: 1 });
  }
  const total = jobs.length;
  const ranked = [...counts.values()].sort((a, b) => {
    if (a.count !== b.count) return b.count - a.count;
    return lessType(b.type, a.type) ? -1 : lessType(a.type, b.type) ? 1 : 0;
  });
  const expected = (coverPercent * total) / 100;
  let covered = 0;
  let kept = 0;
  while (covered < expected && kept < ranked.length) covered += ranked[kept++].count;
  // Computed as the artefact does: count / total, then ÷ (covered / total).
  return ranked.slice(0, kept).map(({ type, count }) => ({ ...type, weight: kept === ranked.length ? count / total : count / total / (covered / total) }));
}
