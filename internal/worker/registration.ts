import type { EventEmitter } from 'node:events';
import type { Lease } from 'etcd3';
import type { NodeInfo } from '../../pkg/model/index.js';
import type { Store } from '../../pkg/store/index.js';

export type RegistrationState = 'idle' | 'registering' | 'registered' | 'lost' | 'stopped';

export type RegistrationEvent =
  | { type: 'registered'; leaseId: string }
  | { type: 'keepaliveSucceeded' }
  | { type: 'keepaliveFailed'; error: Error }
  /** No keepalive succeeded for TTL minus the margin: the lease may lapse any moment (once per outage). */
  | { type: 'unhealthy'; sinceKeepaliveMs: number }
  | { type: 'lost'; error: Error }
  | { type: 'retryFailed'; error: unknown; attempt: number; delayMs: number }
  | { type: 'stopped'; revoked: boolean };

export interface RegistrationOptions {
  store: Store;
  /** What to register; called for every (re-)registration so registeredAt is fresh. */
  describe(): NodeInfo;
  ttlSeconds: number;
  now?: () => number;
  retryDelaysMs?: readonly number[];
}

const DEFAULT_RETRY_DELAYS_MS = [250, 500, 1000, 2000];
/** Stop claiming work this long before the lease could lapse. */
const HEALTH_MARGIN_MS = 1000;

/**
 * The node's presence in etcd: a lease with the NodeInfo under it, kept
 * alive by etcd3's Lease. States go idle → registering → registered; a lost
 * lease goes lost → registering (retried with backoff) → registered again,
 * until stop() makes it stopped for good.
 */
export class Registration {
  private readonly options: RegistrationOptions;
  private readonly now: () => number;
  private readonly listeners = new Set<(event: RegistrationEvent) => void>();
  private stateValue: RegistrationState = 'idle';
  private lease: Lease | undefined;
  private leaseIdValue: string | undefined;
  private lastKeepalive = 0;
  private inflight: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private healthTimer: NodeJS.Timeout | undefined;

  constructor(options: RegistrationOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  get state(): RegistrationState {
    return this.stateValue;
  }

  get leaseId(): string | undefined {
    return this.leaseIdValue;
  }

  /** Subscribes to events; returns the unsubscribe function. */
  on(listener: (event: RegistrationEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The first registration; rejects (etcd unreachable) instead of retrying. */
  async start(): Promise<void> {
    if (this.stateValue !== 'idle') throw new Error(`registration already ${this.stateValue}`);
    await this.track(this.registerOnce());
  }

  /**
   * True while the lease is certainly alive: the last keepalive is recent
   * enough that the lease cannot lapse within the next second.
   */
  isHealthy(): boolean {
    return (
      this.stateValue === 'registered' &&
      this.now() - this.lastKeepalive < this.options.ttlSeconds * 1000 - HEALTH_MARGIN_MS
    );
  }

  /** When the last keepalive (or the registration) succeeded, epoch ms. */
  get lastKeepaliveAt(): number {
    return this.lastKeepalive;
  }

  /** revoke: the node vanishes at once; otherwise the lease just stops being renewed. */
  async stop(options: { revoke: boolean }): Promise<void> {
    if (this.stateValue === 'stopped') return;
    this.stateValue = 'stopped';
    clearTimeout(this.healthTimer);
    this.wake?.();
    await this.inflight?.catch(() => undefined);
    const lease = this.lease;
    this.lease = undefined;
    try {
      if (lease) await this.dispose(lease, options.revoke);
    } finally {
      this.emit({ type: 'stopped', revoked: options.revoke });
    }
  }

  /** A method, not a field read, so TypeScript does not narrow the state across awaits. */
  private stopped(): boolean {
    return this.stateValue === 'stopped';
  }

  private emit(event: RegistrationEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A listener's bug must not break the lease machinery.
      }
    }
  }

  private track(work: Promise<void>): Promise<void> {
    const tracked = work.finally(() => {
      if (this.inflight === tracked) this.inflight = undefined;
    });
    this.inflight = tracked;
    return tracked;
  }

  private async dispose(lease: Lease, revoke: boolean): Promise<void> {
    lease.removeAllListeners();
    if (revoke) await this.options.store.call(() => lease.revoke());
    else lease.release();
  }

  private async registerOnce(): Promise<void> {
    this.stateValue = 'registering';
    const { store, ttlSeconds } = this.options;
    const lease = store.client.lease(ttlSeconds);
    lease.on('lost', (err: Error) => this.onLost(lease, err));
    lease.on('keepaliveSucceeded', () => {
      if (lease !== this.lease) return;
      this.lastKeepalive = this.now();
      this.armHealthCheck();
      this.emit({ type: 'keepaliveSucceeded' });
    });
    // etcd3 types this payload as a keepalive response; at runtime it is the error.
    const emitter: EventEmitter = lease;
    emitter.on('keepaliveFailed', (err: Error) => {
      if (lease === this.lease) this.emit({ type: 'keepaliveFailed', error: err });
    });
    let leaseId: string;
    try {
      leaseId = await store.call(() => lease.grant());
      await store.putNode(this.options.describe(), leaseId);
    } catch (err) {
      await this.dispose(lease, true).catch(() => undefined);
      throw err;
    }
    if (this.stopped()) {
      // stop() came while we registered: it waits for us, and this lease is ours to drop.
      await this.dispose(lease, true).catch(() => undefined);
      return;
    }
    this.lease = lease;
    this.leaseIdValue = leaseId;
    this.lastKeepalive = this.now();
    this.stateValue = 'registered';
    this.armHealthCheck();
    this.emit({ type: 'registered', leaseId });
  }

  /**
   * Fires when the health window closes without a keepalive in between. The
   * worker tracks this itself rather than waiting for etcd3's 'lost' (which
   * comes only after 2 × TTL): by then the master may long have placed the
   * node's jobs elsewhere.
   */
  private armHealthCheck(): void {
    clearTimeout(this.healthTimer);
    const dueIn = this.lastKeepalive + this.options.ttlSeconds * 1000 - HEALTH_MARGIN_MS - this.now();
    this.healthTimer = setTimeout(() => {
      this.healthTimer = undefined;
      if (this.stopped() || this.isHealthy()) return;
      this.emit({ type: 'unhealthy', sinceKeepaliveMs: this.now() - this.lastKeepalive });
    }, Math.max(0, dueIn) + 1);
    this.healthTimer.unref();
  }

  private onLost(lease: Lease, error: Error): void {
    if (lease !== this.lease || this.stateValue === 'stopped') return;
    lease.removeAllListeners();
    this.lease = undefined;
    this.leaseIdValue = undefined;
    this.stateValue = 'lost';
    this.emit({ type: 'lost', error });
    void this.track(this.reRegister());
  }

  /** Retries until registered again or stopped; never rejects. */
  private async reRegister(): Promise<void> {
    const delays = this.options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    for (let attempt = 0; this.stateValue !== 'stopped'; attempt++) {
      try {
        await this.registerOnce();
        return;
      } catch (error) {
        if (this.stopped()) return;
        this.stateValue = 'lost';
        const delayMs = delays[Math.min(attempt, delays.length - 1)];
        this.emit({ type: 'retryFailed', error, attempt, delayMs });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delayMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }
}
