import type { Assignment, Job, NodeInfo, Resources } from '../../pkg/model/index.js';
import type { Versioned, WatchEvent } from '../../pkg/store/index.js';
import { allocate, newNodeView, release, type NodeView } from '../scheduler/index.js';

interface Allocation {
  nodeId: string;
  resources: Resources;
  gpuDevices: string[];
}

interface NodeEntry {
  view: NodeView;
  createRevision: string;
}

/** What changed in a batch of events, so the master knows whether a pass can place more. */
export interface StateChange {
  capacityChanged: boolean;
  newPending: boolean;
  /** Nodes whose registration vanished: their jobs must be requeued. */
  nodesLeft?: boolean;
}

const NO_CHANGE: StateChange = { capacityChanged: false, newPending: false };

/**
 * The master's in-memory snapshot of the cluster, rebuilt from etcd at any
 * time: registered nodes with what is allocated on them (from assignments),
 * and the queue of pending jobs. Local writes (placements, reason updates)
 * are applied at once and the watch events for them recognised later.
 */
export class ClusterState {
  readonly nodes = new Map<string, NodeEntry>();
  readonly pending = new Map<string, Versioned<Job>>();
  private readonly allocations = new Map<string, Allocation>();
  private viewList: NodeView[] | undefined;
  /** jobId → revision of our own latest write, until the watch catches up. */
  private readonly localWrites = new Map<string, bigint>();

  /** onNewPending sees every job that enters the queue (the policy learns the job mix from it). */
  constructor(private readonly onNewPending: (job: Job) => void = () => {}) {}

  // ---- nodes -----------------------------------------------------------------

  resetNodes(items: Versioned<NodeInfo>[]): StateChange {
    this.nodes.clear();
    this.viewList = undefined;
    for (const item of items) this.upsertNode(item.value, item.createRevision);
    return { capacityChanged: true, newPending: false };
  }

  applyNodeEvents(events: WatchEvent<NodeInfo>[]): StateChange {
    let capacityChanged = false;
    let nodesLeft = false;
    for (const e of events) {
      const id = e.key.slice(e.key.lastIndexOf('/') + 1);
      if (e.type === 'delete') {
        this.nodes.delete(id);
        this.viewList = undefined;
        nodesLeft = true;
      } else if (e.value) {
        this.upsertNode(e.value, e.createRevision);
      }
      capacityChanged = true;
    }
    return capacityChanged ? { capacityChanged, newPending: false, nodesLeft } : NO_CHANGE;
  }

  private upsertNode(info: NodeInfo, createRevision: string): void {
    const view = newNodeView(info);
    for (const a of this.allocations.values()) {
      if (a.nodeId === info.id) allocate(view, a.resources, a.gpuDevices);
    }
    this.nodes.set(info.id, { view, createRevision });
    this.viewList = undefined;
  }

  /** Views are mutated in place by allocations, so the list only changes when nodes come or go. */
  nodeViews(): readonly NodeView[] {
    this.viewList ??= [...this.nodes.values()].map((n) => n.view);
    return this.viewList;
  }

  // ---- allocations (assignments) -------------------------------------------

  resetAssignments(items: Versioned<Assignment>[]): StateChange {
    for (const [jobId, a] of this.allocations) this.releaseAllocation(jobId, a);
    for (const item of items) this.recordAllocation(item.value);
    return { capacityChanged: true, newPending: false };
  }

  applyAssignmentEvents(events: WatchEvent<Assignment>[]): StateChange {
    let freed = false;
    for (const e of events) {
      if (e.type === 'put' && e.value) {
        this.recordAllocation(e.value);
      } else if (e.type === 'delete') {
        const jobId = e.key.slice(e.key.lastIndexOf('/') + 1);
        const a = this.allocations.get(jobId);
        if (a) {
          this.releaseAllocation(jobId, a);
          freed = true;
        }
      }
    }
    return freed ? { capacityChanged: true, newPending: false } : NO_CHANGE;
  }

  /** Idempotent: an assignment already recorded (say, by our own commit) is not counted twice. */
  recordAllocation(a: Pick<Assignment, 'jobId' | 'nodeId' | 'resources' | 'gpuDevices'>): void {
    if (this.allocations.has(a.jobId)) return;
    const allocation = { nodeId: a.nodeId, resources: a.resources, gpuDevices: a.gpuDevices };
    this.allocations.set(a.jobId, allocation);
    const node = this.nodes.get(a.nodeId);
    if (node) allocate(node.view, allocation.resources, allocation.gpuDevices);
  }

  /** Undoes a tentative allocation whose commit failed. */
  dropAllocation(jobId: string): void {
    const a = this.allocations.get(jobId);
    if (a) this.releaseAllocation(jobId, a);
  }

  private releaseAllocation(jobId: string, a: Allocation): void {
    this.allocations.delete(jobId);
    const node = this.nodes.get(a.nodeId);
    if (node) release(node.view, a.resources, a.gpuDevices);
  }

  /** Allocations on nodes that are not registered: their attempts were lost with the node. */
  orphanedAllocations(): { jobId: string; nodeId: string }[] {
    const out: { jobId: string; nodeId: string }[] = [];
    for (const [jobId, a] of this.allocations) if (!this.nodes.has(a.nodeId)) out.push({ jobId, nodeId: a.nodeId });
    return out;
  }

  allocationCount(): number {
    return this.allocations.size;
  }

  // ---- jobs --------------------------------------------------------------------

  resetJobs(items: Versioned<Job>[]): StateChange {
    const known = new Set(this.pending.keys());
    this.pending.clear();
    this.localWrites.clear();
    for (const item of items) {
      if (item.value.state !== 'Pending') continue;
      this.pending.set(item.value.id, item);
      if (!known.has(item.value.id)) this.onNewPending(item.value);
    }
    return { capacityChanged: false, newPending: this.pending.size > 0 };
  }

  applyJobEvents(events: WatchEvent<Job>[]): StateChange {
    let newPending = false;
    for (const e of events) {
      const id = e.key.slice(e.key.lastIndexOf('/') + 1);
      const local = this.localWrites.get(id);
      if (local !== undefined) {
        const revision = BigInt(e.modRevision);
        if (e.type === 'put' && revision < local) continue; // older than what we wrote ourselves
        if (revision >= local) this.localWrites.delete(id);
      }
      if (e.type === 'put' && e.value?.state === 'Pending') {
        if (!this.pending.has(id)) {
          newPending = true;
          this.onNewPending(e.value);
        }
        this.pending.set(id, { key: e.key, value: e.value, modRevision: e.modRevision, createRevision: e.createRevision });
      } else {
        this.pending.delete(id);
      }
    }
    return newPending ? { capacityChanged: false, newPending } : NO_CHANGE;
  }

  /** Records our own committed write of a job, ahead of its watch event. */
  noteLocalJobWrite(job: Versioned<Job>, next: Job, revision: string): void {
    this.localWrites.set(job.value.id, BigInt(revision));
    if (next.state === 'Pending') {
      this.pending.set(next.id, { ...job, value: next, modRevision: revision });
    } else {
      this.pending.delete(next.id);
    }
  }
}
