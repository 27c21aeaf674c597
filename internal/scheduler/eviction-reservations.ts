import { chooseGpuDevices } from './allocation.js';
import { Reservation, type BackfillJob } from './backfill.js';
import type { EvictionPlan } from './evictions.js';
import { firstRejection } from './feasibility.js';
import type { NodeView } from './types.js';

/**
 * Room held for the job an eviction was for (docs/queues.md, "Preemption
 * and reclaim"). Without it, the room freed by evicting victims goes to
 * whichever job comes first in the next pass's order, and the starved job
 * needs a second round of evictions, and another. So the node the victims
 * leave is held for that job, as backfill holds a node for the head of the
 * queue (backfill.ts): nothing else is placed there until the job is placed
 * or the hold's deadline passes.
 */
export interface EvictionReservation {
  jobId: string;
  nodeId: string;
  /** The hold lapses then (ms): victims that take long to stop, or a job that fits no more, do not block the node for good. */
  until: number;
}

/**
 * How long a node stays held beyond the victims' stop grace (--evict-grace):
 * time for their workers to stop them and report, and for the next pass to
 * place the job. Past it something else went wrong (a worker that does not
 * answer, a job that no longer fits there), and the node is given back.
 */
export const EVICTION_HOLD_MS = 60_000;

/**
 * The holds of the leading master (or the simulator) between passes: added
 * when a set of evictions is committed, dropped when their job leaves the
 * queue or their deadline passes. Pure bookkeeping; the pass applies them.
 */
export class EvictionReservations {
  private readonly byJob = new Map<string, EvictionReservation>();

  /**
   * The evictions committed (`evicted`: the victims whose eviction was
   * written, each given `graceMs` to stop) hold each preemptor's node.
   */
  add(plan: EvictionPlan, evicted: ReadonlySet<string>, now: number, graceMs: number): void {
    for (const p of plan.preemptors) {
      if (p.victims.some((id) => evicted.has(id))) this.byJob.set(p.jobId, { jobId: p.jobId, nodeId: p.nodeId, until: now + graceMs + EVICTION_HOLD_MS });
    }
  }

  /** The holds still in force for jobs still pending; the others are forgotten. */
  active(now: number, pending: { has(jobId: string): boolean }): EvictionReservation[] {
    const out: EvictionReservation[] = [];
    for (const [jobId, r] of this.byJob) {
      if (r.until <= now || !pending.has(jobId)) this.byJob.delete(jobId);
      else out.push(r);
    }
    return out;
  }

  clear(): void {
    this.byJob.clear();
  }
}

/**
 * The holds of one pass: each held node blocked (a phantom allocation of
 * all it has, as backfill's) for every job but those it is held for.
 * Lifted when the pass ends.
 */
export class HeldNodes {
  private readonly blocks = new Map<string, { block: Reservation; jobs: Set<string> }>();
  private readonly nodeOfJob = new Map<string, string>();

  constructor(nodes: readonly NodeView[], reservations: readonly EvictionReservation[], pending: ReadonlyMap<string, BackfillJob>, busy: ReadonlySet<string>) {
    if (reservations.length === 0) return;
    const byId = new Map(nodes.map((n) => [n.id, n]));
    for (const r of reservations) {
      const job = pending.get(r.jobId);
      const node = byId.get(r.nodeId);
      if (!job || !node || busy.has(r.jobId)) continue;
      let held = this.blocks.get(node.id);
      if (!held) {
        held = { block: Reservation.on(job, node, r.until), jobs: new Set() };
        held.block.hold();
        this.blocks.set(node.id, held);
      }
      held.jobs.add(r.jobId);
      this.nodeOfJob.set(r.jobId, node.id);
    }
  }

  /**
   * A job a node is held for, placed there if it fits now (`place` records
   * it); the node stays blocked for everyone else while other jobs it is
   * held for wait. False when the job has no hold or does not fit yet
   * (victims still stopping): it is placed like any other, elsewhere.
   */
  claim(job: BackfillJob & { id: string }, place: (nodeId: string, gpuDevices: string[]) => void): boolean {
    const nodeId = this.nodeOfJob.get(job.id);
    const held = nodeId === undefined ? undefined : this.blocks.get(nodeId);
    if (!held) return false;
    held.block.lift();
    const node = held.block.node;
    const devices = firstRejection(job, node) ? undefined : chooseGpuDevices(job, node);
    if (devices) {
      place(node.id, devices);
      held.jobs.delete(job.id);
      this.nodeOfJob.delete(job.id);
    }
    if (held.jobs.size > 0) held.block.hold();
    else this.blocks.delete(node.id);
    return devices !== undefined;
  }

  /** The nodes held this pass. */
  nodes(): ReadonlySet<string> {
    return new Set(this.blocks.keys());
  }

  /** The node held for a job, if one is. */
  nodeOf(jobId: string): string | undefined {
    return this.nodeOfJob.get(jobId);
  }

  liftAll(): void {
    for (const { block } of this.blocks.values()) block.lift();
    this.blocks.clear();
    this.nodeOfJob.clear();
  }
}
