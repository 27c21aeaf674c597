import type { JobRequest } from './types.js';

/** One kind of GPU job and how often it is submitted. */
export interface JobShape {
  cpu: number;
  memory: number;
  gpuMilli: number;
  gpuModels?: readonly string[];
  /** Share of recent GPU submissions with this shape, in (0, 1]. */
  weight: number;
}

export function shapeOf(job: JobRequest): string {
  const r = job.resources;
  return `${r.cpu}|${r.memory}|${r.gpuMilli}|${job.gpuModels?.join('|') ?? ''}`;
}

/**
 * The mix of GPU jobs recently submitted: the last `window` GPU jobs, by
 * shape. The fragmentation-aware policy measures a node's free GPUs against
 * it. Beside it, the share of the CPU submitted (last `window` jobs of any
 * kind) that CPU-only jobs ask for, which sets the policy's weights.
 * `shapes()` is rebuilt only after enough new submissions to move it, and
 * both figures change only then, so scores cached against one version stay
 * valid.
 */
export class WorkloadMix {
  private readonly recent: string[] = [];
  private next = 0;
  private readonly counts = new Map<string, { job: JobRequest; count: number }>();
  private sinceRebuild = 0;
  private current: JobShape[] = [];
  private currentCpuPerGpu = 0;
  /** CPU (millicores) of the last `window` submissions of any kind, negative for CPU-only jobs. */
  private readonly cpuRing: number[] = [];
  private cpuNext = 0;
  private cpuOnlyCpu = 0;
  private allCpu = 0;
  private currentCpuOnlyShare = 0;
  private currentSubmissions = 0;
  /** Bumped when shapes() changes. */
  version = 0;

  constructor(private readonly window = 4096) {}

  observe(job: JobRequest): void {
    this.observeCpu(job);
    if (job.resources.gpuMilli === 0) return; // CPU jobs do not use GPU capacity
    const key = shapeOf(job);
    if (this.recent.length < this.window) {
      this.recent.push(key);
    } else {
      this.forget(this.recent[this.next]);
      this.recent[this.next] = key;
      this.next = (this.next + 1) % this.window;
    }
    const entry = this.counts.get(key);
    if (entry) entry.count++;
    else this.counts.set(key, { job, count: 1 });
    this.sinceRebuild++;
  }

  private observeCpu(job: JobRequest): void {
    const cpu = job.resources.cpu;
    const signed = job.resources.gpuMilli === 0 ? -cpu : cpu;
    if (this.cpuRing.length < this.window) {
      this.cpuRing.push(signed);
    } else {
      const old = this.cpuRing[this.cpuNext];
      this.allCpu -= Math.abs(old);
      if (old < 0) this.cpuOnlyCpu += old;
      this.cpuRing[this.cpuNext] = signed;
      this.cpuNext = (this.cpuNext + 1) % this.window;
    }
    this.allCpu += cpu;
    if (signed < 0) this.cpuOnlyCpu += cpu;
  }

  private forget(key: string): void {
    const entry = this.counts.get(key);
    if (entry && --entry.count === 0) this.counts.delete(key);
  }

  /**
   * The current mix. It is rebuilt when the submissions since the last
   * rebuild equal those it was built from (or fill the window): rarely, so
   * cached scores stay valid, yet the mix tracks its source from the first job.
   */
  shapes(): readonly JobShape[] {
    const built = this.recent.length - this.sinceRebuild;
    if (this.sinceRebuild > 0 && this.sinceRebuild >= Math.min(Math.max(built, 1), this.window)) {
      const total = this.recent.length;
      this.current = [...this.counts.values()].map(({ job, count }) => ({
        cpu: job.resources.cpu,
        memory: job.resources.memory,
        gpuMilli: job.resources.gpuMilli,
        ...(job.gpuModels ? { gpuModels: job.gpuModels } : {}),
        weight: count / total,
      }));
      let cpu = 0;
      let gpu = 0;
      for (const shape of this.current) {
        cpu += shape.weight * shape.cpu;
        gpu += shape.weight * shape.gpuMilli;
      }
      this.currentCpuPerGpu = gpu > 0 ? (cpu / gpu) * 1000 : 0;
      this.currentCpuOnlyShare = this.allCpu > 0 ? this.cpuOnlyCpu / this.allCpu : 0;
      this.currentSubmissions = this.cpuRing.length;
      this.sinceRebuild = 0;
      this.version++;
    }
    return this.current;
  }

  /** Millicores per GPU over the current mix (total CPU ÷ total GPU); 0 before any GPU job. */
  cpuPerGpu(): number {
    this.shapes();
    return this.currentCpuPerGpu;
  }

  /** Submissions of any kind that cpuOnlyShare() was measured on (at most `window`), as of the current mix. */
  submissions(): number {
    this.shapes();
    return this.currentSubmissions;
  }

  /** CPU-only jobs' share of the CPU submitted by the last `window` jobs, as of the current mix; 0 before any job. */
  cpuOnlyShare(): number {
    this.shapes();
    return this.currentCpuOnlyShare;
  }
}
