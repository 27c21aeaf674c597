import type { Lease } from 'etcd3';
import { submitJobs } from '../../internal/cli/bulk-submit.js';
import { buildJobSpec, newJobId, type Job, type NodeInfo } from '../../pkg/model/index.js';
import type { Store } from '../../pkg/store/index.js';
import { summarize, type LatencySummary } from '../bench/percentiles.js';
import { sleep } from '../bench/wait.js';

const PROBE_LABEL = 'titan.bench/probe';

/**
 * Measures how fast the master places jobs while something else loads the
 * cluster (a job streaming its log): small jobs are submitted at a steady
 * pace for a node that exists only in etcd (registered under a lease, no
 * worker behind it), so each placement is the master's work alone. The
 * latency is the job's `scheduledAt` (the master's clock) minus its
 * `createdAt` (the bench's), both this host's clock. The probe jobs stay
 * Scheduled: nothing runs them.
 */
export class PlacementProbe {
  private lease: Lease | undefined;
  private readonly submitted: Job[] = [];
  private running: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly store: Store,
    private readonly nodeId: string,
    private readonly jobs: ReadonlyMap<string, Job>,
  ) {}

  /** Registers the probe node. */
  async register(): Promise<void> {
    const lease = this.store.client.lease(30);
    this.lease = lease;
    const leaseId = await this.store.call(() => lease.grant());
    const info: NodeInfo = {
      id: this.nodeId,
      hostname: this.nodeId,
      capacity: { cpu: 1_000_000, memory: 2 ** 40, gpuMilli: 0 },
      gpus: [],
      labels: { [PROBE_LABEL]: this.nodeId },
      executors: ['shell'],
      registeredAt: Date.now(),
      version: 'bench-probe',
    };
    await this.store.putNode(info, leaseId);
  }

  /** Submits one probe job every intervalMs until stop(). */
  start(intervalMs: number): void {
    this.stopping = false;
    this.running = (async () => {
      while (!this.stopping) {
        const spec = buildJobSpec({ shell: 'true', cpu: '1m', memory: '1Mi', nodeSelector: { [PROBE_LABEL]: this.nodeId } });
        const job: Job = { ...spec, name: 'probe', id: newJobId(), state: 'Pending', createdAt: Date.now(), attempt: 0 };
        this.submitted.push(job);
        await submitJobs(this.store, [job]);
        await sleep(intervalMs);
      }
    })();
  }

  /** Stops submitting, waits (up to timeoutMs) for every probe to be placed, and summarizes the latencies of this round. */
  async stop(timeoutMs = 10_000): Promise<{ summary: LatencySummary | undefined; placed: number; submitted: number }> {
    this.stopping = true;
    await this.running;
    const round = this.submitted.splice(0);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && round.some((j) => this.jobs.get(j.id)?.scheduledAt === undefined)) await sleep(20);
    const latencies = round.flatMap((j) => {
      const at = this.jobs.get(j.id)?.scheduledAt;
      return at === undefined ? [] : [at - j.createdAt];
    });
    return { summary: summarize(latencies), placed: latencies.length, submitted: round.length };
  }

  async close(): Promise<void> {
    await this.lease?.revoke().catch(() => this.lease?.release());
  }
}
