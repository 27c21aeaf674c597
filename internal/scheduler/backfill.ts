import { gpuDeviceId, type Resources } from '../../pkg/model/index.js';
import { allocate, chooseGpuDevices, release } from './allocation.js';
import { firstRejection, fitsEmptyNode } from './feasibility.js';
import type { JobRequest, NodeView } from './types.js';

/** What a reservation reads of the snapshot: the nodes, and what runs on each until when. */
export interface ReservationSnapshot {
  nodeViews(): readonly NodeView[];
  allocationsOn(nodeId: string): { resources: Resources; gpuDevices: readonly string[]; endsBy: number }[];
}

/** A job as backfill sees it: what it needs, and its timeout if it has one. */
export interface BackfillJob extends JobRequest {
  timeoutMs?: number;
}

/**
 * Backfill (as Slurm's): the first job of a pass that fits nowhere gets a
 * node reserved, the one where it fits soonest once running jobs end by
 * their timeouts. For the rest of the pass nothing else goes there, except
 * jobs whose own timeout ends them before the reserved job can start. So a
 * large job is not starved by a stream of small ones, and small jobs still
 * fill the gap while the node drains.
 */
export class Reservation {
  private held = false;
  private readonly whole: { cpu: number; memory: number; gpuMilli: number };
  private readonly allDevices: string[];

  private constructor(
    readonly job: BackfillJob,
    readonly node: NodeView,
    /** When the job can start there at the latest (Infinity: a job without timeout is in the way). */
    readonly at: number,
  ) {
    this.whole = { cpu: node.capacity.cpu, memory: node.capacity.memory, gpuMilli: node.gpus.length * 1000 };
    this.allDevices = node.gpus.map(gpuDeviceId);
  }

  /** A node held for a job on other grounds (eviction-reservations.ts), until `at`. */
  static on(job: BackfillJob, node: NodeView, at: number): Reservation {
    return new Reservation(job, node, at);
  }

  /**
   * The reservation for a job that fits nowhere now, or undefined if no node
   * could ever take it. Nodes in `taken` are held for other jobs already
   * (eviction-reservations.ts): blocking one again would keep its own job out.
   */
  static for(job: BackfillJob, state: ReservationSnapshot, now: number, taken?: ReadonlySet<string>): Reservation | undefined {
    let best: { node: NodeView; at: number; releases: number } | undefined;
    for (const node of state.nodeViews()) {
      if (!fitsEmptyNode(job, node) || taken?.has(node.id)) continue;
      const copy: NodeView = { ...node, allocated: { ...node.allocated }, gpuFree: [...node.gpuFree] };
      const running = state.allocationsOn(node.id).sort((a, b) => a.endsBy - b.endsBy);
      let at = now;
      let releases = 0;
      for (const r of running) {
        if (!firstRejection(job, copy)) break;
        release(copy, r.resources, r.gpuDevices);
        at = Math.max(at, r.endsBy);
        releases++;
      }
      const better = !best || at < best.at || (at === best.at && (releases < best.releases || (releases === best.releases && node.id < best.node.id)));
      if (better) best = { node, at, releases };
    }
    return best ? new Reservation(job, best.node, best.at) : undefined;
  }

  /** Blocks the node for the rest of the pass: a phantom allocation of everything it has. */
  hold(): void {
    if (this.held) return;
    allocate(this.node, this.whole, this.allDevices);
    this.held = true;
  }

  /** Lifts the block (at the end of the pass, or to try a backfill candidate). */
  lift(): void {
    if (!this.held) return;
    release(this.node, this.whole, this.allDevices);
    this.held = false;
  }

  /**
   * The devices a job would get on the reserved node if it may backfill
   * there: its timeout ends it before the reserved job can start, and it
   * fits now. Undefined otherwise.
   */
  backfill(job: BackfillJob, now: number): string[] | undefined {
    if (job.timeoutMs === undefined || !Number.isFinite(this.at) || now + job.timeoutMs > this.at) return undefined;
    this.lift();
    const fits = !firstRejection(job, this.node);
    const devices = fits ? chooseGpuDevices(job, this.node) : undefined;
    this.hold();
    return devices;
  }
}
