import { addResources, arrayIdOfTaskId, DEFAULT_QUEUE, subtractResources, ZERO_RESOURCES, type GangSpec, type Resources } from '../../pkg/model/index.js';
import { allocate, release } from './allocation.js';
import type { RunningJob } from './preemption.js';
import type { NodeView } from './types.js';

/** What a placed or running attempt holds, and what a pass and the preemption planner read of it. */
export interface Allocation {
  nodeId: string;
  resources: Resources;
  gpuDevices: readonly string[];
  queue: string;
  priority: number;
  attempt: number;
  since: number;
  preemptible?: boolean;
  minRuntimeMs?: number;
  /** An eviction was requested; the job is being stopped. */
  evicting: boolean;
  gang?: string;
  /** A gang replica's rank (absent from an older master's assignment). */
  rank?: number;
  /** The port of the node's --port-range a gang replica holds (absent from an older master's assignment). */
  port?: number;
  /** When the attempt is over at the latest (its timeout), if it has one. */
  endsBy?: number;
}

/** A placed or running replica of a gang, as a pass reads it. */
export interface GangAllocation {
  jobId: string;
  nodeId: string;
  attempt: number;
  evicting: boolean;
  rank?: number;
  port?: number;
}

/** What an allocation records of its job besides where it is and what it holds. */
export type AllocationMeta = Omit<Allocation, 'nodeId' | 'resources' | 'gpuDevices'>;

/** The job fields an allocation is made from when a pass places the job. */
export interface PlacedJobFields {
  priority: number;
  /** Absent: the default queue. */
  queue?: string;
  preemptible?: boolean;
  minRuntimeMs?: number;
  gang?: GangSpec;
  timeoutMs?: number;
  /** Attempts so far: the placement starts attempt + 1. */
  attempt: number;
}

/** The allocation of a job a pass places at `now`; `port` is the one a gang replica got. */
export function placedAllocationMeta(job: PlacedJobFields, now: number, port?: number): AllocationMeta {
  return {
    queue: job.queue ?? DEFAULT_QUEUE,
    priority: job.priority,
    attempt: job.attempt + 1,
    since: now,
    ...(job.preemptible !== undefined ? { preemptible: job.preemptible } : {}),
    ...(job.minRuntimeMs !== undefined ? { minRuntimeMs: job.minRuntimeMs } : {}),
    evicting: false,
    ...(job.gang ? { gang: job.gang.id, rank: job.gang.rank } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(job.timeoutMs !== undefined ? { endsBy: now + job.timeoutMs } : {}),
  };
}

const NO_DEVICES: readonly string[] = Object.freeze([]);

/**
 * Every allocation of a snapshot by job id, applied to the node views as it
 * is added or released, with what each queue holds and how many allocations
 * are preemptible kept alongside. The master's ClusterState and the
 * simulator's replay keep their allocations in one of these, so a pass
 * reads the same figures from both.
 */
export class AllocationBook {
  private readonly allocations = new Map<string, Allocation>();
  /** Allocations marked preemptible: a pass only runs priority preemption when there are some. */
  private preemptibleCount = 0;
  /** What each queue's placed and running jobs hold. */
  private readonly byQueue = new Map<string, Resources>();
  /** Placed and running tasks per array: a task's job id names its array (arrayIdOfTaskId), so nothing else needs recording. */
  private readonly byArray = new Map<string, number>();

  /** `viewOf` finds the node an allocation is applied to (none: the node is not registered). */
  constructor(private readonly viewOf: (nodeId: string) => NodeView | undefined) {}

  has(jobId: string): boolean {
    return this.allocations.has(jobId);
  }

  get(jobId: string): Readonly<Allocation> | undefined {
    return this.allocations.get(jobId);
  }

  size(): number {
    return this.allocations.size;
  }

  add(jobId: string, nodeId: string, resources: Resources, gpuDevices: readonly string[], meta: AllocationMeta): void {
    const allocation: Allocation = { nodeId, resources, gpuDevices: gpuDevices.length === 0 ? NO_DEVICES : gpuDevices, ...meta };
    this.allocations.set(jobId, allocation);
    this.countInQueue(allocation.queue, resources, 1);
    this.countInArray(jobId, 1);
    if (allocation.preemptible) this.preemptibleCount++;
    const node = this.viewOf(nodeId);
    if (node) allocate(node, resources, allocation.gpuDevices, allocation.port);
  }

  /** Releases a job's allocation; the allocation it had, if any. */
  remove(jobId: string): Allocation | undefined {
    const a = this.allocations.get(jobId);
    if (!a) return undefined;
    this.allocations.delete(jobId);
    this.countInQueue(a.queue, a.resources, -1);
    this.countInArray(jobId, -1);
    if (a.preemptible) this.preemptibleCount--;
    const node = this.viewOf(a.nodeId);
    if (node) release(node, a.resources, a.gpuDevices, a.port);
    return a;
  }

  /** Releases every allocation. */
  clear(): void {
    for (const jobId of [...this.allocations.keys()]) this.remove(jobId);
  }

  /** Applies the allocations on a node to a fresh view of it (the node registered, or registered again). */
  applyTo(view: NodeView): void {
    for (const a of this.allocations.values()) if (a.nodeId === view.id) allocate(view, a.resources, a.gpuDevices, a.port);
  }

  private countInQueue(queue: string, r: Resources, sign: 1 | -1): void {
    const held = this.byQueue.get(queue) ?? ZERO_RESOURCES;
    this.byQueue.set(queue, sign === 1 ? addResources(held, r) : subtractResources(held, r));
  }

  private countInArray(jobId: string, sign: 1 | -1): void {
    const array = arrayIdOfTaskId(jobId);
    if (array === undefined) return;
    const n = (this.byArray.get(array) ?? 0) + sign;
    if (n > 0) this.byArray.set(array, n);
    else this.byArray.delete(array);
  }

  /** How many tasks of an array are placed or running (being evicted included): what `%max` caps. */
  arrayAllocations(arrayId: string): number {
    return this.byArray.get(arrayId) ?? 0;
  }

  /** Marks allocations whose eviction was requested. */
  markEvicting(jobIds: readonly string[], evicting = true): void {
    for (const id of jobIds) {
      const a = this.allocations.get(id);
      if (a) a.evicting = evicting;
    }
  }

  /** The placed or running replicas of a gang (those being evicted included). */
  gangAllocations(gangId: string): GangAllocation[] {
    const out: GangAllocation[] = [];
    for (const [jobId, a] of this.allocations) {
      if (a.gang !== gangId) continue;
      out.push({
        jobId,
        nodeId: a.nodeId,
        attempt: a.attempt,
        evicting: a.evicting,
        ...(a.rank !== undefined ? { rank: a.rank } : {}),
        ...(a.port !== undefined ? { port: a.port } : {}),
      });
    }
    return out;
  }

  /** What runs on a node: resources, devices and when each ends at the latest (Infinity: no timeout). */
  allocationsOn(nodeId: string): { resources: Resources; gpuDevices: readonly string[]; endsBy: number }[] {
    const out: { resources: Resources; gpuDevices: readonly string[]; endsBy: number }[] = [];
    for (const a of this.allocations.values()) {
      if (a.nodeId === nodeId) out.push({ resources: a.resources, gpuDevices: a.gpuDevices, endsBy: a.endsBy ?? Infinity });
    }
    return out;
  }

  /** Whether any allocation is marked preemptible (priority preemption has victims to consider). */
  hasPreemptible(): boolean {
    return this.preemptibleCount > 0;
  }

  /** What each queue's placed and running jobs hold now. */
  allocatedByQueue(): ReadonlyMap<string, Resources> {
    return this.byQueue;
  }

  /** Placed and running jobs as the preemption planner sees them. */
  runningJobs(): RunningJob[] {
    const out: RunningJob[] = [];
    for (const [jobId, a] of this.allocations) {
      out.push({
        jobId,
        nodeId: a.nodeId,
        attempt: a.attempt,
        resources: a.resources,
        gpuDevices: [...a.gpuDevices],
        queue: a.queue,
        priority: a.priority,
        startedAt: a.since,
        ...(a.preemptible !== undefined ? { preemptible: a.preemptible } : {}),
        ...(a.minRuntimeMs !== undefined ? { minRuntimeMs: a.minRuntimeMs } : {}),
        evicting: a.evicting,
      });
    }
    return out;
  }

  entries(): IterableIterator<[string, Readonly<Allocation>]> {
    return this.allocations.entries();
  }
}
