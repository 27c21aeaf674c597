import { CorruptRecordError, decode, flatString, looksLikeRecord, records, type InformerOptions, type Versioned, type WatchEvent } from '../../pkg/store/index.js';
import { DEFAULT_QUEUE, ZERO_RESOURCES, type Assignment, type GangSpec, type Job, type JobKind, type NodeInfo, type Resources } from '../../pkg/model/index.js';
import { allocate, newNodeView, release, type JobRequest, type NodeView, type RunningJob } from '../scheduler/index.js';
import { compareQueueOrder } from './queue-order.js';

/**
 * What the master keeps of a pending job: what placement and the queue order
 * need, and the stored value itself as msgpack bytes (in a latin1 string: one
 * compact heap object), decoded again only when the master writes the job.
 * 100,000 queued jobs take about a third of the memory of their decoded values.
 * It is a JobRequest, so the scheduler takes it as it is.
 */
export interface PendingJob extends JobRequest {
  kind: JobKind;
  gpuModels?: string[];
  nodeSelector?: Record<string, string>;
  priority: number;
  /** Absent: the default queue. */
  queue?: string;
  preemptible?: boolean;
  minRuntimeMs?: number;
  gang?: GangSpec;
  timeoutMs?: number;
  createdAt: number;
  attempt: number;
  retryAt: number | undefined;
  reason: string | undefined;
  reasonAt: number | undefined;
  /** Revision of the stored job, which every write of the master compares. */
  modRevision: number;
  /** The stored value (msgpack) as a latin1 string. */
  stored: string;
}

/** Decodes a pending job's stored value (validated when it was read: decodePendingJob). */
export function storedJob(job: PendingJob): Job {
  return decode<Job>(Buffer.from(job.stored, 'latin1'));
}

const PENDING_BYTES = Buffer.from('Pending');
/** Jobs of the same shape share one Resources object (bounded: cleared when it grows large). */
const sharedResources = new Map<string, Resources>();

function shareResources(r: Resources): Resources {
  const key = `${r.cpu}|${r.memory}|${r.gpuMilli}`;
  let shared = sharedResources.get(key);
  if (!shared) {
    if (sharedResources.size >= 4096) sharedResources.clear();
    shared = Object.freeze({ cpu: r.cpu, memory: r.memory, gpuMilli: r.gpuMilli });
    sharedResources.set(key, shared);
  }
  return shared;
}

/** The compact form of a job, or null when it is not pending. */
export function pendingJobOf(job: Job, stored: Buffer | string, modRevision: number): PendingJob | null {
  if (job.state !== 'Pending') return null;
  return {
    id: flatString(job.id),
    kind: job.kind === 'docker' ? 'docker' : job.kind === 'shell' ? 'shell' : job.kind,
    resources: shareResources(job.resources),
    gpuModels: job.gpuModels?.map(flatString),
    nodeSelector: job.nodeSelector ? Object.fromEntries(Object.entries(job.nodeSelector).map(([k, v]) => [flatString(k), flatString(v)])) : undefined,
    priority: job.priority,
    ...(job.queue !== undefined ? { queue: flatString(job.queue) } : {}),
    ...(job.preemptible !== undefined ? { preemptible: job.preemptible } : {}),
    ...(job.minRuntimeMs !== undefined ? { minRuntimeMs: job.minRuntimeMs } : {}),
    ...(job.gang ? { gang: { ...job.gang, id: flatString(job.gang.id), ...(job.gang.topology ? { topology: flatString(job.gang.topology) } : {}) } } : {}),
    ...(job.timeoutMs !== undefined ? { timeoutMs: job.timeoutMs } : {}),
    createdAt: job.createdAt,
    attempt: job.attempt,
    retryAt: job.retryAt,
    reason: job.reason === undefined ? undefined : flatString(job.reason),
    reasonAt: job.reasonAt,
    modRevision,
    stored: typeof stored === 'string' ? stored : stored.toString('latin1'),
  };
}

/**
 * The jobs informer's decoder: a pending job becomes a PendingJob, anything
 * else null. A value without the bytes "Pending" cannot be a pending job in
 * any msgpack encoding, so most jobs (scheduled, running, ended: the
 * master's own placements among them) are never decoded at all; of those
 * only bytes that cannot be a record at all are found corrupt here (readers
 * of the whole record find the rest). Throws CorruptRecordError.
 */
export function decodePendingJob(value: Buffer, key = '', modRevision?: string): PendingJob | null {
  if (value.indexOf(PENDING_BYTES) < 0) {
    if (!looksLikeRecord(value)) throw new CorruptRecordError('job', key, 'not a MessagePack map', modRevision);
    return null;
  }
  return pendingJobOf(records.job.decode(value, key, modRevision), value, 0);
}

/** How the master follows the jobs collection: pending jobs only, compact. */
export const JOBS_INFORMER_OPTIONS: InformerOptions<PendingJob | null> = {
  decode: decodePendingJob,
  keepListed: (job) => job !== null,
  kind: 'job',
};

interface Allocation {
  nodeId: string;
  resources: Resources;
  gpuDevices: readonly string[];
  queue: string;
  priority: number;
  attempt: number;
  since: number;
  preemptible?: boolean;
  minRuntimeMs?: number;
  /** An eviction was requested; the worker is stopping the job. */
  evicting: boolean;
  gang?: string;
  /** When the attempt is over at the latest (its timeout), if it has one. */
  endsBy?: number;
}

/** What an allocation records of its job besides resources and devices. */
type AllocationMeta = Pick<Allocation, 'queue' | 'priority' | 'attempt' | 'since' | 'preemptible' | 'minRuntimeMs' | 'evicting' | 'gang' | 'endsBy'>;

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
    ...(a.timeoutMs !== undefined ? { endsBy: (a.assignedAt ?? 0) + a.timeoutMs } : {}),
  };
}

const NO_DEVICES: readonly string[] = Object.freeze([]);

interface NodeEntry {
  view: NodeView;
  createRevision: string;
  /** Where gang peers reach the node's jobs. */
  hostname: string;
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
  /** Pending jobs by id. Read-only outside this class: the queue order below follows every change. */
  readonly pending = new Map<string, PendingJob>();
  private readonly allocations = new Map<string, Allocation>();
  /** Gang replicas whose attempt ended since the master last looked: one may have failed the gang. */
  endedReplicas: { jobId: string; gang: string }[] = [];
  /** Allocations marked preemptible: a pass only runs priority preemption when there are some. */
  private preemptibleCount = 0;
  /** What each queue's running jobs hold, kept with every allocation and release. */
  private readonly byQueue = new Map<string, Resources>();
  private viewList: NodeView[] | undefined;
  /** The nodes' capacity summed (capacity()); like viewList, it only changes when nodes come or go. */
  private capacityTotal: Readonly<Resources> | undefined;
  /** The pending jobs in queue order, kept from pass to pass; entries no longer in `pending` are dropped lazily. */
  private ordered: PendingJob[] | undefined;
  /** Jobs put into `pending` since `ordered` was built: merged in by the next queue(). */
  private added: PendingJob[] = [];

  /** onNewPending sees every job that enters the queue (the policy learns the job mix from it). */
  constructor(private readonly onNewPending: (job: PendingJob) => void = () => {}) {}

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
    for (const a of this.allocations.values()) {
      if (a.nodeId === info.id) allocate(view, a.resources, a.gpuDevices);
    }
    this.nodes.set(info.id, { view, createRevision, hostname: info.hostname || info.id });
    this.nodesChanged();
  }

  private nodesChanged(): void {
    this.viewList = undefined;
    this.capacityTotal = undefined;
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
        const known = this.allocations.get(e.value.jobId);
        if (known) known.evicting = e.value.evict !== undefined;
        else this.recordAllocation(e.value);
      } else if (e.type === 'delete') {
        const jobId = e.key.slice(e.key.lastIndexOf('/') + 1);
        const a = this.allocations.get(jobId);
        if (a) {
          this.releaseAllocation(jobId, a);
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
    this.addAllocation(
      flatString(a.jobId),
      node,
      node ? node.view.id : flatString(a.nodeId),
      shareResources(a.resources),
      a.gpuDevices.map(flatString),
      metaOfAssignment(a),
    );
  }

  /** Allocates a job the pass just placed (its id and resources are already compact) on a node of the snapshot. */
  allocatePlaced(job: PendingJob, nodeId: string, gpuDevices: readonly string[], now = Date.now()): void {
    if (this.allocations.has(job.id)) return;
    const node = this.nodes.get(nodeId);
    const meta: AllocationMeta = {
      queue: job.queue ?? DEFAULT_QUEUE,
      priority: job.priority,
      attempt: job.attempt + 1,
      since: now,
      ...(job.preemptible !== undefined ? { preemptible: job.preemptible } : {}),
      ...(job.minRuntimeMs !== undefined ? { minRuntimeMs: job.minRuntimeMs } : {}),
      evicting: false,
      ...(job.gang ? { gang: job.gang.id } : {}),
      ...(job.timeoutMs !== undefined ? { endsBy: now + job.timeoutMs } : {}),
    };
    this.addAllocation(job.id, node, node ? node.view.id : nodeId, job.resources, gpuDevices, meta);
  }

  private addAllocation(
    jobId: string,
    node: NodeEntry | undefined,
    nodeId: string,
    resources: Resources,
    gpuDevices: readonly string[],
    meta: AllocationMeta,
  ): void {
    const allocation: Allocation = { nodeId, resources, gpuDevices: gpuDevices.length === 0 ? NO_DEVICES : gpuDevices, ...meta };
    this.allocations.set(jobId, allocation);
    this.countInQueue(allocation.queue, resources, 1);
    if (allocation.preemptible) this.preemptibleCount++;
    if (node) allocate(node.view, resources, allocation.gpuDevices);
  }

  private countInQueue(queue: string, r: Resources, sign: 1 | -1): void {
    const held = this.byQueue.get(queue) ?? { ...ZERO_RESOURCES };
    held.cpu += sign * r.cpu;
    held.memory += sign * r.memory;
    held.gpuMilli += sign * r.gpuMilli;
    this.byQueue.set(queue, held);
  }

  /** Marks allocations whose eviction was just committed, ahead of their watch events. */
  markEvicting(jobIds: readonly string[]): void {
    for (const id of jobIds) {
      const a = this.allocations.get(id);
      if (a) a.evicting = true;
    }
  }

  /** The node an allocated job is on, if any. */
  nodeOf(jobId: string): string | undefined {
    return this.allocations.get(jobId)?.nodeId;
  }

  /** The placed or running replicas of a gang (those being evicted included). */
  gangAllocations(gangId: string): { jobId: string; nodeId: string; attempt: number; evicting: boolean }[] {
    const out: { jobId: string; nodeId: string; attempt: number; evicting: boolean }[] = [];
    for (const [jobId, a] of this.allocations) if (a.gang === gangId) out.push({ jobId, nodeId: a.nodeId, attempt: a.attempt, evicting: a.evicting });
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

  /** The pending replicas of a gang. */
  pendingReplicas(gangId: string): PendingJob[] {
    return [...this.pending.values()].filter((j) => j.gang?.id === gangId);
  }

  /** Whether any running job is marked preemptible (priority preemption has victims to consider). */
  hasPreemptible(): boolean {
    return this.preemptibleCount > 0;
  }

  /** What each queue's placed and running jobs hold now. */
  allocatedByQueue(): ReadonlyMap<string, Resources> {
    return this.byQueue;
  }

  /**
   * The registered nodes' capacity, summed. Kept until nodes come or go (a
   * view's capacity never changes): every pass asks for it, and summing
   * 1,000 nodes was most of the cost of a pass with one job to place.
   */
  capacity(): Readonly<Resources> {
    if (!this.capacityTotal) {
      const total = { ...ZERO_RESOURCES };
      for (const n of this.nodes.values()) {
        total.cpu += n.view.capacity.cpu;
        total.memory += n.view.capacity.memory;
        total.gpuMilli += n.view.capacity.gpuMilli;
      }
      this.capacityTotal = Object.freeze(total);
    }
    return this.capacityTotal;
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

  /** Undoes a tentative allocation whose commit failed. */
  dropAllocation(jobId: string): void {
    const a = this.allocations.get(jobId);
    if (a) this.releaseAllocation(jobId, a);
  }

  private releaseAllocation(jobId: string, a: Allocation): void {
    this.allocations.delete(jobId);
    this.countInQueue(a.queue, a.resources, -1);
    if (a.preemptible) this.preemptibleCount--;
    const node = this.nodes.get(a.nodeId);
    if (node) release(node.view, a.resources, a.gpuDevices);
  }

  /** Allocations on nodes that are not registered: their attempts were lost with the node. */
  orphanedAllocations(): { jobId: string; nodeId: string }[] {
    const out: { jobId: string; nodeId: string }[] = [];
    for (const [jobId, a] of this.allocations) if (!this.nodes.has(a.nodeId)) out.push({ jobId, nodeId: a.nodeId });
    return out;
  }

  /** Allocations made at or before `time` (assignedAt), oldest assignments included. */
  allocationsAssignedBefore(time: number): { jobId: string; nodeId: string; attempt: number }[] {
    const out: { jobId: string; nodeId: string; attempt: number }[] = [];
    for (const [jobId, a] of this.allocations) if (a.since <= time) out.push({ jobId, nodeId: a.nodeId, attempt: a.attempt });
    return out;
  }

  /** Visits every allocation's job, node and queue: the master's metrics count them when scraped. */
  forEachAllocation(visit: (jobId: string, nodeId: string, queue: string) => void): void {
    for (const [jobId, a] of this.allocations) visit(jobId, a.nodeId, a.queue);
  }

  allocationCount(): number {
    return this.allocations.size;
  }

  // ---- jobs --------------------------------------------------------------------

  /** The jobs informer's list (JOBS_INFORMER_OPTIONS: pending jobs only, null for the others). */
  resetJobs(items: Versioned<PendingJob | null>[]): StateChange {
    const known = new Set(this.pending.keys());
    this.pending.clear();
    this.ordered = undefined;
    this.added = [];
    for (const item of items) {
      const job = item.value;
      if (!job) continue;
      job.modRevision = Number(item.modRevision);
      this.pending.set(job.id, job);
      if (!known.has(job.id)) this.onNewPending(job);
    }
    return { capacityChanged: false, newPending: this.pending.size > 0 };
  }

  applyJobEvents(events: WatchEvent<PendingJob | null>[]): StateChange {
    let newPending = false;
    for (const e of events) {
      const id = e.key.slice(e.key.lastIndexOf('/') + 1);
      const revision = Number(e.modRevision);
      const current = this.pending.get(id);
      // Older than what we hold: the watch bringing a write that noteLocalJobWrite already applied.
      if (current && revision < current.modRevision) continue;
      const job = e.type === 'put' ? e.value : undefined;
      if (job) {
        job.modRevision = revision;
        if (!current) {
          newPending = true;
          this.onNewPending(job);
        }
        this.putPending(job);
      } else if (current) {
        this.pending.delete(id);
      }
    }
    return newPending ? { capacityChanged: false, newPending } : NO_CHANGE;
  }

  /**
   * Records our own committed write of a pending job (placed: `next`
   * undefined; a new reason: the job as now stored) at `revision`, ahead of
   * its watch event. The write compared the revision we held, so no event of
   * the job can lie between that one and ours: if the queue no longer holds
   * that revision, the watch already delivered our write (or a later one)
   * and there is nothing to do.
   */
  noteLocalJobWrite(jobId: string, heldRevision: number, revision: number, next?: PendingJob): void {
    const current = this.pending.get(jobId);
    if (!current || current.modRevision !== heldRevision) return;
    if (next) {
      next.modRevision = revision;
      this.putPending(next);
    } else {
      this.pending.delete(jobId);
    }
  }

  private putPending(job: PendingJob): void {
    this.pending.set(job.id, job);
    if (!this.ordered) return;
    this.added.push(job);
    // Past this, sorting everything again is cheaper than merging.
    if (this.added.length > 1024 + this.pending.size / 4) {
      this.ordered = undefined;
      this.added = [];
    }
  }

  /**
   * The pending jobs in queue order (compareQueueOrder: highest priority
   * first, then first submitted). The order is kept from pass to pass: jobs
   * that arrived since are merged in, so a long queue is not sorted again for
   * every pass. The list may still hold jobs that left the queue or were
   * replaced since: a job is current only while `pending.get(job.id) === job`.
   */
  queue(): readonly PendingJob[] {
    if (!this.ordered) {
      this.ordered = [...this.pending.values()].sort(compareQueueOrder);
      this.added = [];
    } else if (this.added.length > 0 || this.ordered.length > 2 * this.pending.size + 1024) {
      const current = (job: PendingJob): boolean => this.pending.get(job.id) === job;
      const added = this.added.filter(current).sort(compareQueueOrder);
      const old = this.ordered;
      const merged: PendingJob[] = [];
      for (let i = 0, k = 0; i < old.length || k < added.length; ) {
        if (k < added.length && (i >= old.length || compareQueueOrder(added[k], old[i]) < 0)) {
          merged.push(added[k++]);
        } else {
          const job = old[i++];
          if (current(job)) merged.push(job);
        }
      }
      this.ordered = merged;
      this.added = [];
    }
    return this.ordered;
  }
}
