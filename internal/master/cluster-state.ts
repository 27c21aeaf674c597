import { flatString, type Versioned, type WatchEvent } from '../../pkg/store/index.js';
import {
  addResources,
  DEFAULT_QUEUE,
  dependencyReason,
  peerAddressOf,
  ZERO_RESOURCES,
  type Assignment,
  type Dependency,
  type JobState,
  type NodeInfo,
  type ParentState,
  type Resources,
} from '../../pkg/model/index.js';
import {
  AllocationBook,
  EvictionReservations,
  newNodeView,
  placedAllocationMeta,
  type AllocationMeta,
  type GangAllocation,
  type NodeView,
  type PassSnapshot,
  type RunningJob,
} from '../scheduler/index.js';
import { anyChange, DependencyIndex, type DependencyChanges } from './dependency-index.js';
import { isPendingJob, shareResources, type JobEntry, type PendingJob } from './pending-job.js';
import { PendingQueue } from './pending-queue.js';

function metaOfAssignment(a: Partial<Assignment>): AllocationMeta {
  return {
    queue: a.queue === undefined ? DEFAULT_QUEUE : flatString(a.queue),
    priority: a.priority ?? 0,
    attempt: a.attempt ?? 0,
    since: a.assignedAt ?? 0,
    ...(a.preemptible !== undefined ? { preemptible: a.preemptible } : {}),
    ...(a.minRuntimeMs !== undefined ? { minRuntimeMs: a.minRuntimeMs } : {}),
    evicting: a.evict !== undefined,
    ...(a.gang !== undefined ? { gang: flatString(a.gang) } : {}),
    ...(a.rank !== undefined ? { rank: a.rank } : {}),
    ...(a.port !== undefined ? { port: a.port } : {}),
    ...(a.timeoutMs !== undefined ? { endsBy: (a.assignedAt ?? 0) + a.timeoutMs } : {}),
  };
}

interface NodeEntry {
  view: NodeView;
  createRevision: string;
  /** Where gang peers reach the node's jobs (peerAddressOf). */
  address: string;
}

/** What changed in a batch of events, so the master knows whether a pass can place more. */
export interface StateChange {
  capacityChanged: boolean;
  newPending: boolean;
  /** Nodes whose registration vanished: their jobs must be requeued. */
  nodesLeft?: boolean;
}

const NO_CHANGE: StateChange = { capacityChanged: false, newPending: false };

/** The state of a job the informer handed over (a PendingJob is Pending). */
function stateOf(entry: NonNullable<JobEntry>): JobState {
  return isPendingJob(entry) ? 'Pending' : entry.state;
}

/**
 * The master's in-memory snapshot of the cluster, rebuilt from etcd at any
 * time: registered nodes with what is allocated on them (from assignments,
 * in an AllocationBook), and the queue of pending jobs (PendingQueue). It is
 * the PassSnapshot the scheduling pass plans over. Local writes
 * (placements, reason updates) are applied at once and the watch events for
 * them recognised later.
 */
export class ClusterState implements PassSnapshot<PendingJob> {
  readonly nodes = new Map<string, NodeEntry>();
  private readonly jobs: PendingQueue;
  /** Pending jobs that wait for others (`--after`), and what is known of the jobs they wait for. */
  readonly dependencies = new DependencyIndex();
  /** Nodes held for the jobs the leader's evictions were for, until they are placed (EvictionReservations). */
  readonly evictionHolds = new EvictionReservations();
  private readonly allocations = new AllocationBook((nodeId) => this.nodes.get(nodeId)?.view);
  /** Gang replicas whose attempt ended since the master last looked: one may have failed the gang. */
  endedReplicas: { jobId: string; gang: string }[] = [];
  private viewList: NodeView[] | undefined;
  private addressMap: Map<string, string> | undefined;
  /** The nodes' capacity summed (capacity()); like viewList, it only changes when nodes come or go. */
  private capacityTotal: Readonly<Resources> | undefined;

  /** onNewPending sees every job that enters the queue (the policy learns the job mix from it). */
  constructor(onNewPending: (job: PendingJob) => void = () => {}) {
    // A job waiting for others stays out of the queue order until its conditions hold.
    this.jobs = new PendingQueue(onNewPending, (job) => job.after !== undefined && this.dependencies.verdictOf(job.id)?.kind !== 'satisfied');
  }

  // ---- nodes -----------------------------------------------------------------

  resetNodes(items: Versioned<NodeInfo>[]): StateChange {
    this.nodes.clear();
    this.nodesChanged();
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
        this.nodesChanged();
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
    this.allocations.applyTo(view);
    this.nodes.set(info.id, { view, createRevision, address: peerAddressOf(info) });
    this.nodesChanged();
  }

  private nodesChanged(): void {
    this.viewList = undefined;
    this.addressMap = undefined;
    this.capacityTotal = undefined;
  }

  /** Views are mutated in place by allocations, so the list only changes when nodes come or go. */
  nodeViews(): readonly NodeView[] {
    this.viewList ??= [...this.nodes.values()].map((n) => n.view);
    return this.viewList;
  }

  addresses(): ReadonlyMap<string, string> {
    this.addressMap ??= new Map([...this.nodes].map(([id, n]) => [id, n.address]));
    return this.addressMap;
  }

  /**
   * The registered nodes' capacity, summed. Kept until nodes come or go (a
   * view's capacity never changes): every pass asks for it, and summing
   * 1,000 nodes was most of the cost of a pass with one job to place.
   */
  capacity(): Readonly<Resources> {
    if (!this.capacityTotal) {
      let total: Resources = ZERO_RESOURCES;
      for (const n of this.nodes.values()) total = addResources(total, n.view.capacity);
      this.capacityTotal = Object.freeze(total);
    }
    return this.capacityTotal;
  }

  // ---- allocations (assignments) -------------------------------------------

  resetAssignments(items: Versioned<Assignment>[]): StateChange {
    this.allocations.clear();
    for (const item of items) this.recordAllocation(item.value);
    return { capacityChanged: true, newPending: false };
  }

  applyAssignmentEvents(events: WatchEvent<Assignment>[]): StateChange {
    let freed = false;
    for (const e of events) {
      if (e.type === 'put' && e.value) {
        if (this.allocations.has(e.value.jobId)) this.allocations.markEvicting([e.value.jobId], e.value.evict !== undefined);
        else this.recordAllocation(e.value);
      } else if (e.type === 'delete') {
        const jobId = e.key.slice(e.key.lastIndexOf('/') + 1);
        const a = this.allocations.remove(jobId);
        if (a) {
          if (a.gang !== undefined) this.endedReplicas.push({ jobId, gang: a.gang });
          freed = true;
        }
      }
    }
    return freed ? { capacityChanged: true, newPending: false } : NO_CHANGE;
  }

  /** Idempotent: an assignment already recorded (say, by our own commit) is not counted twice. */
  recordAllocation(a: Pick<Assignment, 'jobId' | 'nodeId' | 'resources'> & Partial<Assignment> & { gpuDevices: readonly string[] }): void {
    if (this.allocations.has(a.jobId)) return;
    const node = this.nodes.get(a.nodeId);
    // Strings of a decoded assignment are copied: as slices they would keep its whole value alive (flatString).
    this.allocations.add(
      flatString(a.jobId),
      node ? node.view.id : flatString(a.nodeId),
      shareResources(a.resources),
      a.gpuDevices.map(flatString),
      metaOfAssignment(a),
    );
  }

  /** Allocates a job the pass just placed (its id and resources are already compact) on a node of the snapshot. */
  allocatePlaced(job: PendingJob, nodeId: string, gpuDevices: readonly string[], now = Date.now(), port?: number): void {
    if (this.allocations.has(job.id)) return;
    const node = this.nodes.get(nodeId);
    this.allocations.add(job.id, node ? node.view.id : nodeId, job.resources, gpuDevices, placedAllocationMeta(job, now, port));
  }

  /** Marks allocations whose eviction was just committed, ahead of their watch events. */
  markEvicting(jobIds: readonly string[]): void {
    this.allocations.markEvicting(jobIds);
  }

  /** The node an allocated job is on, if any. */
  nodeOf(jobId: string): string | undefined {
    return this.allocations.get(jobId)?.nodeId;
  }

  gangAllocations(gangId: string): GangAllocation[] {
    return this.allocations.gangAllocations(gangId);
  }

  arrayAllocations(arrayId: string): number {
    return this.allocations.arrayAllocations(arrayId);
  }

  allocationsOn(nodeId: string): { resources: Resources; gpuDevices: readonly string[]; endsBy: number }[] {
    return this.allocations.allocationsOn(nodeId);
  }

  /** Whether any running job is marked preemptible (priority preemption has victims to consider). */
  hasPreemptible(): boolean {
    return this.allocations.hasPreemptible();
  }

  allocatedByQueue(): ReadonlyMap<string, Resources> {
    return this.allocations.allocatedByQueue();
  }

  /** Placed and running jobs as the preemption planner sees them. */
  runningJobs(): RunningJob[] {
    return this.allocations.runningJobs();
  }

  /** Undoes a tentative allocation whose commit failed. */
  dropAllocation(jobId: string): void {
    this.allocations.remove(jobId);
  }

  /** Allocations on nodes that are not registered: their attempts were lost with the node. */
  orphanedAllocations(): { jobId: string; nodeId: string }[] {
    const out: { jobId: string; nodeId: string }[] = [];
    for (const [jobId, a] of this.allocations.entries()) if (!this.nodes.has(a.nodeId)) out.push({ jobId, nodeId: a.nodeId });
    return out;
  }

  /** Allocations made at or before `time` (assignedAt), oldest assignments included. */
  allocationsAssignedBefore(time: number): { jobId: string; nodeId: string; attempt: number }[] {
    const out: { jobId: string; nodeId: string; attempt: number }[] = [];
    for (const [jobId, a] of this.allocations.entries()) if (a.since <= time) out.push({ jobId, nodeId: a.nodeId, attempt: a.attempt });
    return out;
  }

  /** Visits every allocation's job, node and queue: the master's metrics count them when scraped. */
  forEachAllocation(visit: (jobId: string, nodeId: string, queue: string) => void): void {
    for (const [jobId, a] of this.allocations.entries()) visit(jobId, a.nodeId, a.queue);
  }

  allocationCount(): number {
    return this.allocations.size();
  }

  // ---- jobs --------------------------------------------------------------------

  /** Pending jobs by id (read-only: PendingQueue keeps its order with every change). */
  get pending(): ReadonlyMap<string, PendingJob> {
    return this.jobs.pending;
  }

  /** The jobs informer's list (jobsInformerOptions: pending jobs, and parents of pending jobs; null for the others). */
  resetJobs(items: Versioned<JobEntry>[]): StateChange {
    const newPending = this.jobs.reset(items);
    this.dependencies.clear();
    let changed = false;
    for (const job of this.jobs.pending.values()) if (job.after) changed = this.track(job.id, job.after) || changed;
    // What the list shows of the parents (those known as such while it was decoded); the others are read (takeUnread).
    if (this.dependencies.hasParents()) {
      for (const item of items) {
        if (item.value && this.dependencies.isParent(item.value.id)) changed = this.observe(item.value.id, stateOf(item.value), item.modRevision) || changed;
      }
    }
    return { capacityChanged: false, newPending: newPending || changed };
  }

  applyJobEvents(events: WatchEvent<JobEntry>[]): StateChange {
    let changed = this.jobs.apply(events);
    for (const e of events) {
      if (!this.dependencies.hasParents() && !(isPendingJob(e.value) && e.value.after)) continue;
      const id = e.key.slice(e.key.lastIndexOf('/') + 1);
      // The index follows the queue: a job waiting for others is in both, until it leaves the queue.
      const queued = this.jobs.pending.get(id);
      if (queued?.after) changed = this.track(id, queued.after) || changed;
      else this.dependencies.remove(id);
      // A put decoded before its key was known as a parent's (null) tells nothing: the read of the new parent does.
      if (this.dependencies.isParent(id) && (e.type === 'delete' || e.value)) {
        changed = this.observe(id, e.type === 'delete' || !e.value ? 'gone' : stateOf(e.value), e.modRevision) || changed;
      }
    }
    return changed ? { capacityChanged: false, newPending: true } : NO_CHANGE;
  }

  /** What reads of parents found (Store.getJobStates): undefined state, no such job. */
  observeParents(results: readonly { id: string; state: JobState | undefined; revision: string }[]): StateChange {
    let changed = false;
    for (const r of results) changed = this.observe(r.id, r.state ?? 'gone', r.revision) || changed;
    return changed ? { capacityChanged: false, newPending: true } : NO_CHANGE;
  }

  /** What a read of an array named as a parent found (Store.getArrayTaskStates). */
  observeArray(arrayId: string, read: { count: number; tasks: readonly { id: string; state: JobState; revision: string }[]; revision: string }): StateChange {
    const tasks = read.tasks.map((t) => ({ id: t.id, state: t.state, revision: Number(t.revision) }));
    return this.released(this.dependencies.observeArray(arrayId, { count: read.count, tasks, revision: Number(read.revision) })) ? { capacityChanged: false, newPending: true } : NO_CHANGE;
  }

  /** A queued job waiting for others joins the index (again: a no-op); true when that changed something a pass must see. */
  private track(id: string, after: readonly Dependency[]): boolean {
    if (this.dependencies.verdictOf(id)) return false;
    const verdict = this.dependencies.add(id, after);
    if (verdict.kind === 'satisfied') this.jobs.release(id); // its parents are known to have ended so
    return verdict.kind !== 'waiting';
  }

  /** A parent seen in a state; its released dependents join the queue order. True when a dependent changed. */
  private observe(parentId: string, state: ParentState, revision: string): boolean {
    return this.released(this.dependencies.observe(parentId, state, Number(revision)));
  }

  /** Released dependents join the queue order; true when a dependent changed. */
  private released(changes: DependencyChanges): boolean {
    for (const id of changes.released) this.jobs.release(id);
    return anyChange(changes);
  }

  /** Why a pending job may not be placed yet: the jobs it waits for (PassSnapshot.blockedReason). */
  blockedReason(job: PendingJob): string | undefined {
    if (!job.after) return undefined;
    // Every queued dependent is indexed; one that was not would wait rather than start early.
    return this.dependencies.verdictOf(job.id) ? this.dependencies.reasonOf(job.id) : dependencyReason(job.after);
  }

  /**
   * The new reasons of jobs waiting for others whose stored reason says
   * something else (at most `max`; the rest stay due): what the master's pass
   * writes besides the scheduler's reasons. Jobs whose reason is right
   * already (most: a job says what it waits for from its submit on), not
   * queued, or `busy` are only taken off the list.
   */
  dependencyReasons(max: number, busy: ReadonlySet<string>): { job: PendingJob; reason: string }[] {
    const out: { job: PendingJob; reason: string }[] = [];
    for (const id of this.dependencies.reasonsDue) {
      if (out.length >= max) break;
      this.dependencies.reasonsDue.delete(id);
      const job = this.jobs.pending.get(id);
      const reason = job && !busy.has(id) ? this.blockedReason(job) : undefined;
      if (job && reason !== undefined && reason !== job.reason) out.push({ job, reason });
    }
    return out;
  }

  /** Records our own committed write of a pending job ahead of its watch event (PendingQueue.noteLocalWrite). */
  noteLocalJobWrite(jobId: string, heldRevision: number, revision: number, next?: PendingJob): void {
    this.jobs.noteLocalWrite(jobId, heldRevision, revision, next);
    if (!this.jobs.pending.has(jobId)) this.dependencies.remove(jobId);
  }

  /** The pending replicas of a gang. */
  pendingReplicas(gangId: string): PendingJob[] {
    return [...this.jobs.pending.values()].filter((j) => j.gang?.id === gangId);
  }

  /** The pending jobs in queue order (PendingQueue.inOrder). */
  queue(): readonly PendingJob[] {
    return this.jobs.inOrder();
  }
}
