import type { Lease } from 'etcd3';
import { NO_CAUSES, type Assignment, type NodeInfo, type Resources } from '../../pkg/model/index.js';
import { records, startInformer, type Informer, type Store, type Versioned, type WatchEvent } from '../../pkg/store/index.js';

/**
 * Simulated nodes, in the spirit of Kubernetes' kubemark/KWOK: every node is
 * a real registration in etcd (NodeInfo under a TTL lease) and answers its
 * assignments through the same fenced writes as titan-worker (reports under
 * its own prefix, store.putReport: Running, then Succeeded; the master folds
 * them into the job, and the fold of the end deletes the assignment and frees
 * the capacity), but runs no container.
 *
 * Two shortcuts keep 1,000 nodes cheap in one process, neither visible to the
 * master: nodes share leases (one per `nodesPerLease`, kept alive by etcd3),
 * and ONE watch over the whole assignment collection dispatches events by
 * node id, instead of one watch per node.
 */

export interface SimNodesOptions {
  store: Store;
  count: number;
  nodesPerLease: number;
  leaseTtlSeconds: number;
  capacity: Resources;
  /** false: nodes only acknowledge Running and keep the assignment (--no-complete). */
  complete: boolean;
  /** How long a simulated run takes between Running and Succeeded. */
  runMs: number;
  /** Acknowledgement writes in flight at once, over all nodes. */
  ackConcurrency: number;
  /** Problems worth a line on stderr (lost lease, failed write). */
  warn(message: string): void;
}

export interface AssignmentSeen {
  jobId: string;
  nodeId: string;
  /** performance.now() when the watch delivered the assignment's creation. */
  seenAt: number;
  /** The master's Date.now() when it planned the placement (Assignment.assignedAt). */
  assignedAt: number;
}

export type AckOutcome = 'Running' | 'Succeeded' | 'fenced' | 'failed';

export interface SimNodeStats {
  nodes: number;
  assigned: number;
  running: number;
  succeeded: number;
  fenced: number;
  failed: number;
  queued: number;
  inFlight: number;
}

interface AckTask {
  kind: 'start' | 'finish';
  assignment: Versioned<Assignment>;
  startedAt?: number;
}

const REGISTER_CONCURRENCY = 32;

export function simNodeId(index: number): string {
  return `sim-${String(index + 1).padStart(5, '0')}`;
}

export class SimNodes {
  readonly ids: string[];
  private readonly nodeIds: Set<string>;
  private readonly leases: Lease[] = [];
  private informer: Informer | undefined;
  /** jobId → create revision of the assignment already handled (a re-list must not start it twice). */
  private readonly handled = new Map<string, string>();
  private readonly assignedListeners = new Set<(seen: AssignmentSeen[]) => void>();
  private readonly ackListeners = new Set<(jobId: string, outcome: AckOutcome) => void>();
  /** Jobs another part of the bench answers for (the log writer): their assignments go to it, not to the ack queue. */
  private readonly claimed = new Map<string, (assignment: Versioned<Assignment>) => void>();
  private queue: AckTask[] = [];
  private queueHead = 0;
  private inFlight = 0;
  private held = false;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly counters = { assigned: 0, running: 0, succeeded: 0, fenced: 0, failed: 0 };

  constructor(private readonly options: SimNodesOptions) {
    this.ids = Array.from({ length: options.count }, (_, i) => simNodeId(i));
    this.nodeIds = new Set(this.ids);
  }

  /** Grants the shared leases and registers every node under one of them. */
  async register(): Promise<void> {
    const { store, count, nodesPerLease, leaseTtlSeconds, capacity } = this.options;
    const leaseCount = Math.ceil(count / nodesPerLease);
    const leaseIds: string[] = [];
    for (let i = 0; i < leaseCount; i++) {
      const lease = store.client.lease(leaseTtlSeconds);
      lease.on('lost', (err: Error) => {
        if (!this.stopped) this.options.warn(`simulated nodes: lease ${i} lost (${err.message}); its ${nodesPerLease} nodes left the cluster`);
      });
      this.leases.push(lease);
      leaseIds.push(await store.call(() => lease.grant()));
    }
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < count) {
        const index = next++;
        const id = this.ids[index];
        const info: NodeInfo = {
          id,
          hostname: id,
          capacity: { ...capacity },
          gpus: [],
          labels: { 'titan.bench/simulated': 'true' },
          executors: ['docker', 'shell'],
          registeredAt: Date.now(),
          version: 'bench-sim',
        };
        await store.putNode(info, leaseIds[Math.floor(index / nodesPerLease)]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(REGISTER_CONCURRENCY, count) }, lane));
  }

  /** Starts the one assignment watch; resolves once its first list is in. */
  async startWatch(): Promise<void> {
    const { store } = this.options;
    this.informer = startInformer<Assignment>(store, store.keys.collection('assign'), {
      reset: (items) => this.onAssignments(items.map((i) => ({ ...i, type: 'put' as const }))),
      events: (events) => this.onAssignments(events),
      error: (err) => this.options.warn(`simulated nodes: assignment watch failed (${err.message}); re-listing`),
    }, { decode: records.assignment.decode });
    await this.informer.ready;
  }

  /** Called with every batch of new assignments the watch delivers, in order. */
  onAssigned(listener: (seen: AssignmentSeen[]) => void): () => void {
    this.assignedListeners.add(listener);
    return () => this.assignedListeners.delete(listener);
  }

  /** Called after each acknowledgement write. */
  onAck(listener: (jobId: string, outcome: AckOutcome) => void): () => void {
    this.ackListeners.add(listener);
    return () => this.ackListeners.delete(listener);
  }

  /** Hands the assignment of this job to `handler` instead of acknowledging it. */
  claim(jobId: string, handler: (assignment: Versioned<Assignment>) => void): () => void {
    this.claimed.set(jobId, handler);
    return () => this.claimed.delete(jobId);
  }

  /** Nodes keep seeing assignments but write nothing until releaseAcks (keeps their CPU out of a measurement). */
  holdAcks(): void {
    this.held = true;
  }

  releaseAcks(): void {
    this.held = false;
    this.pump();
  }

  stats(): SimNodeStats {
    return { nodes: this.ids.length, ...this.counters, queued: this.queue.length - this.queueHead, inFlight: this.inFlight };
  }

  /** True when no acknowledgement is queued, waiting for --run-ms, or in flight. */
  isIdle(): boolean {
    return this.inFlight === 0 && this.timers.size === 0 && this.queueHead >= this.queue.length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.informer?.stop();
    const { store } = this.options;
    await Promise.all(this.leases.map((l) => store.call(() => l.revoke()).catch(() => l.release())));
  }

  private onAssignments(events: readonly Pick<WatchEvent<Assignment>, 'type' | 'key' | 'value' | 'modRevision' | 'createRevision'>[]): void {
    const seenAt = performance.now();
    const { keys } = this.options.store;
    const seen: AssignmentSeen[] = [];
    for (const e of events) {
      const { nodeId, jobId } = keys.parseAssignment(e.key);
      if (!this.nodeIds.has(nodeId)) continue;
      if (e.type === 'delete') {
        if (this.handled.get(jobId) === e.createRevision) this.handled.delete(jobId);
        continue;
      }
      if (!e.value || this.handled.get(jobId) === e.createRevision) continue; // a later put (cancel flag) of one we know
      this.handled.set(jobId, e.createRevision);
      const assignment: Versioned<Assignment> = { key: e.key, value: e.value, modRevision: e.modRevision, createRevision: e.createRevision };
      const claimant = this.claimed.get(jobId);
      if (claimant) {
        claimant(assignment);
        continue;
      }
      this.counters.assigned++;
      seen.push({ jobId, nodeId, seenAt, assignedAt: e.value.assignedAt });
      this.queue.push({ kind: 'start', assignment });
    }
    if (seen.length > 0) for (const l of this.assignedListeners) l(seen);
    this.pump();
  }

  private pump(): void {
    while (!this.held && !this.stopped && this.inFlight < this.options.ackConcurrency && this.queueHead < this.queue.length) {
      const task = this.queue[this.queueHead++];
      this.inFlight++;
      void this.ack(task).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
    if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private emitAck(jobId: string, outcome: AckOutcome): void {
    for (const l of this.ackListeners) l(jobId, outcome);
  }

  private async ack(task: AckTask): Promise<void> {
    const { store } = this.options;
    const { assignment } = task;
    const jobId = assignment.value.jobId;
    try {
      // As titan-worker: the node reports under its own prefix (fenced by the assignment) and the master folds it.
      const { attempt } = assignment.value;
      if (task.kind === 'start') {
        const startedAt = Date.now();
        if (!(await store.putReport(assignment, { jobId, attempt, state: 'Running', startedAt }))) {
          this.counters.fenced++;
          this.emitAck(jobId, 'fenced');
          return;
        }
        this.counters.running++;
        this.emitAck(jobId, 'Running');
        if (this.options.complete) this.finishLater(assignment, startedAt);
        return;
      }
      const end = { result: { type: 'exited' as const, exitCode: 0 }, causes: NO_CAUSES, finishedAt: Date.now() };
      if (!(await store.putReport(assignment, { jobId, attempt, state: 'Ended', startedAt: task.startedAt ?? Date.now(), end }))) {
        this.counters.fenced++;
        this.emitAck(jobId, 'fenced');
        return;
      }
      this.counters.succeeded++;
      this.emitAck(jobId, 'Succeeded');
    } catch (err) {
      this.counters.failed++;
      if (this.counters.failed <= 5) this.options.warn(`simulated node ${assignment.value.nodeId}: write for job ${jobId} failed: ${(err as Error).message}`);
      this.emitAck(jobId, 'failed');
    }
  }

  private finishLater(assignment: Versioned<Assignment>, startedAt: number): void {
    const enqueue = (): void => {
      this.queue.push({ kind: 'finish', assignment, startedAt });
      this.pump();
    };
    if (this.options.runMs <= 0) {
      enqueue();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      enqueue();
    }, this.options.runMs);
    this.timers.add(timer);
  }
}
