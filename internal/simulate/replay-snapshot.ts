import { addResources, ZERO_RESOURCES, type Resources } from '../../pkg/model/index.js';
import { AllocationBook, compareJobsInQueue, placedAllocationMeta, type GangAllocation, type NodeView, type PassJob, type PassSnapshot, type RunningJob } from '../scheduler/index.js';

/**
 * The simulator's snapshot: fixed nodes, an AllocationBook (the one the
 * master's ClusterState keeps) and the pending jobs, all in memory. The
 * scheduling pass plans over it exactly as over the master's; the replay
 * then applies the plan at once (what the master's commits and the
 * workers' reports do in etcd).
 */
export class ReplaySnapshot<J extends PassJob> implements PassSnapshot<J> {
  readonly pending = new Map<string, J>();
  private readonly byId: Map<string, NodeView>;
  private readonly addressMap: Map<string, string>;
  private readonly total: Readonly<Resources>;
  readonly allocations: AllocationBook;
  private ordered: J[] | undefined;

  constructor(private readonly views: readonly NodeView[]) {
    this.byId = new Map(views.map((v) => [v.id, v]));
    this.addressMap = new Map(views.map((v) => [v.id, v.id]));
    this.total = Object.freeze(views.reduce<Resources>((sum, v) => addResources(sum, v.capacity), ZERO_RESOURCES));
    this.allocations = new AllocationBook((id) => this.byId.get(id));
  }

  /** A job joins the queue (it arrived, or came back after an eviction). */
  enqueue(job: J): void {
    this.pending.set(job.id, job);
    this.ordered = undefined;
  }

  /** A job leaves the queue (it was placed). */
  dequeue(jobId: string): void {
    if (this.pending.delete(jobId)) this.ordered = undefined;
  }

  nodeViews(): readonly NodeView[] {
    return this.views;
  }

  addresses(): ReadonlyMap<string, string> {
    return this.addressMap;
  }

  capacity(): Readonly<Resources> {
    return this.total;
  }

  queue(): readonly J[] {
    this.ordered ??= [...this.pending.values()].sort(compareJobsInQueue);
    return this.ordered;
  }

  allocatedByQueue(): ReadonlyMap<string, Resources> {
    return this.allocations.allocatedByQueue();
  }

  allocationsOn(nodeId: string): { resources: Resources; gpuDevices: readonly string[]; endsBy: number }[] {
    return this.allocations.allocationsOn(nodeId);
  }

  gangAllocations(gangId: string): GangAllocation[] {
    return this.allocations.gangAllocations(gangId);
  }

  arrayAllocations(arrayId: string): number {
    return this.allocations.arrayAllocations(arrayId);
  }

  runningJobs(): RunningJob[] {
    return this.allocations.runningJobs();
  }

  hasPreemptible(): boolean {
    return this.allocations.hasPreemptible();
  }

  allocatePlaced(job: J, nodeId: string, gpuDevices: readonly string[], now: number, port?: number): void {
    if (!this.allocations.has(job.id)) this.allocations.add(job.id, nodeId, job.resources, gpuDevices, placedAllocationMeta(job, now, port));
  }
}
