import type { EventEmitter } from 'node:events';
import type { Lease } from 'etcd3';
import type { Logger } from 'pino';
import { isRetryAborted, retryCall } from '../concurrency/call-retry.js';
import { TitanError } from '../model/errors.js';
import type { Store } from './store.js';

/**
 * idle → granting → held; a lost (or given up) lease goes lost → granting
 * (retried with backoff) → held again, until close() makes it closed for good.
 */
export type LeaseKeeperState = 'idle' | 'granting' | 'held' | 'lost' | 'closed';

export type LeaseKeeperEvent =
  /** The first lease is granted (and attached). */
  | { type: 'granted'; leaseId: string }
  /** A new lease replaced one that was lost or given up. */
  | { type: 'regranted'; leaseId: string }
  | { type: 'keepaliveSucceeded'; leaseId: string }
  | { type: 'keepaliveFailed'; leaseId: string; error: Error }
  /**
   * No keepalive succeeded within the safety window: the lease may lapse any
   * moment, so stop claiming work. Once per outage; the lease is kept (a
   * keepalive that gets through makes it fresh again).
   */
  | { type: 'stale'; leaseId: string; sinceKeepaliveMs: number }
  /** etcd3 declared the lease gone; a new one is being granted. */
  | { type: 'lost'; leaseId: string; error: Error }
  /** A grant (or its attach) failed; the next try comes in delayMs. `attempt` counts from 0. */
  | { type: 'grantFailed'; error: unknown; attempt: number; delayMs: number }
  | { type: 'closed'; revoked: boolean };

export type LeaseKeeperListener = (event: LeaseKeeperEvent) => void;

export interface LeaseKeeperOptions {
  store: Store;
  ttlSeconds: number;
  /**
   * The lease is stale this long before one TTL has passed since the last
   * successful keepalive (default 1000 ms): the room for the keepalive's
   * round trip and a late timer.
   */
  safetyMarginMs?: number;
  /**
   * Writes what the lease holds, after each grant. A failure revokes the
   * lease and counts as a failed grant.
   */
  attach?(leaseId: string): Promise<void>;
  /** Listener failures go here. */
  logger: Logger;
  now?: () => number;
  /** Backoff of the re-grant loop: first delay and cap, ms (defaults 250 and 2000). */
  retryInitialDelayMs?: number;
  retryMaxDelayMs?: number;
}

const DEFAULT_SAFETY_MARGIN_MS = 1000;

/**
 * One etcd lease, held for as long as its owner runs: granted, kept alive by
 * etcd3's Lease, granted again when lost.
 *
 * etcd3 reports a lease `lost` only after 2 × TTL without a keepalive, when
 * etcd may long have expired it and handed its keys' work to someone else.
 * So the keeper times keepalives itself and calls the lease stale (isFresh()
 * false, a 'stale' event) once the safety window — TTL minus a margin — has
 * passed since the last successful one: the owner stops claiming work before
 * etcd could have let the lease go.
 */
export class LeaseKeeper {
  private readonly options: LeaseKeeperOptions;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly windowMs: number;
  private readonly listeners = new Set<LeaseKeeperListener>();
  /** close() aborts the wait between grants. */
  private readonly closing = new AbortController();
  private stateValue: LeaseKeeperState = 'idle';
  private lease: Lease | undefined;
  private leaseIdValue: string | undefined;
  private lastKeepalive = 0;
  private staleTimer: NodeJS.Timeout | undefined;
  /** The grant (or grant loop) in progress: close() waits for it. */
  private inflight: Promise<void> | undefined;

  constructor(options: LeaseKeeperOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
    this.windowMs = options.ttlSeconds * 1000 - (options.safetyMarginMs ?? DEFAULT_SAFETY_MARGIN_MS);
    if (this.windowMs <= 0) {
      throw new TitanError('InvalidInput', `lease TTL ${options.ttlSeconds} s leaves no time before the safety margin of ${options.safetyMarginMs ?? DEFAULT_SAFETY_MARGIN_MS} ms: use a longer TTL`);
    }
  }

  get state(): LeaseKeeperState {
    return this.stateValue;
  }

  /** The lease held now; undefined while none is. */
  get leaseId(): string | undefined {
    return this.leaseIdValue;
  }

  /** When the last keepalive (or the grant request) of the held lease was, in `now()` ms. */
  get lastKeepaliveAt(): number {
    return this.lastKeepalive;
  }

  /** How long after a keepalive the lease turns stale, ms. */
  get safetyWindowMs(): number {
    return this.windowMs;
  }

  /** Subscribes to events; returns the unsubscribe function. */
  on(listener: LeaseKeeperListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * True while the lease is certainly alive: a lease is held and its last
   * keepalive is within the safety window. Claim work only while this holds.
   */
  isFresh(): boolean {
    return this.stateValue === 'held' && this.now() - this.lastKeepalive < this.windowMs;
  }

  /**
   * The first grant. It rejects (etcd unreachable, attach failed) unless
   * `retry`, which tries again with backoff until granted or closed.
   */
  async start(options: { retry?: boolean } = {}): Promise<void> {
    if (this.stateValue !== 'idle') throw new Error(`lease keeper already ${this.stateValue}`);
    await this.track(options.retry ? this.grantUntilHeld('granted') : this.grantOnce('granted'));
  }

  /**
   * Gives the held lease up (released, not revoked: its keys stay until it
   * lapses) and grants a new one. Only if `leaseId` is still the lease held,
   * so a caller that looked at an older lease does not drop a newer one.
   */
  regrant(leaseId: string, reason: string): void {
    if (this.stateValue !== 'held' || this.leaseIdValue !== leaseId) return;
    this.logger.debug({ lease: leaseId, reason }, 'giving the lease up; granting a new one');
    this.drop()?.release();
    this.stateValue = 'lost';
    void this.track(this.grantUntilHeld('regranted'));
  }

  /** revoke: the lease's keys go at once; otherwise the lease just stops being renewed. */
  async close(options: { revoke: boolean }): Promise<void> {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'closed';
    this.closing.abort();
    await this.inflight?.catch(() => undefined);
    const lease = this.drop();
    try {
      if (lease) await this.dispose(lease, options.revoke);
    } finally {
      this.emit({ type: 'closed', revoked: options.revoke });
    }
  }

  /** A method, not a field read, so TypeScript does not narrow the state across awaits. */
  private closed(): boolean {
    return this.stateValue === 'closed';
  }

  private emit(event: LeaseKeeperEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        // A listener's bug must not break the lease machinery.
        this.logger.error({ err, event: event.type }, 'a lease event listener failed');
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

  /** Forgets the held lease (its events no longer count) and returns it. */
  private drop(): Lease | undefined {
    clearTimeout(this.staleTimer);
    this.staleTimer = undefined;
    const lease = this.lease;
    this.lease = undefined;
    this.leaseIdValue = undefined;
    lease?.removeAllListeners();
    return lease;
  }

  private async dispose(lease: Lease, revoke: boolean): Promise<void> {
    lease.removeAllListeners();
    if (revoke) await this.options.store.call(() => lease.revoke());
    else lease.release();
  }

  /** Grants and attaches until that succeeds or the keeper closes; never rejects. */
  private async grantUntilHeld(kind: 'granted' | 'regranted'): Promise<void> {
    let grant: Promise<void> | undefined;
    try {
      await retryCall(
        () => {
          grant = this.grantOnce(kind);
          return grant;
        },
        {
          retryable: () => !this.closed(),
          initialDelayMs: this.options.retryInitialDelayMs ?? 250,
          maxDelayMs: this.options.retryMaxDelayMs ?? 2000,
          signal: this.closing.signal,
          onRetry: (error, failures, delayMs) => {
            if (this.closed()) return;
            this.stateValue = 'lost';
            this.emit({ type: 'grantFailed', error, attempt: failures - 1, delayMs });
          },
        },
      );
    } catch (err) {
      // An abort (close) can overtake a grant in flight: it disposes of its own lease, and close() waits for it.
      await grant?.catch(() => undefined);
      if (!isRetryAborted(err) && !this.closed()) this.logger.error({ err }, 'granting a lease gave up');
    }
  }

  private async grantOnce(kind: 'granted' | 'regranted'): Promise<void> {
    if (this.closed()) return;
    this.stateValue = 'granting';
    const { store, ttlSeconds } = this.options;
    // Timed from the request: etcd starts the TTL no earlier than that.
    let lastKeepalive = this.now();
    const lease = store.client.lease(ttlSeconds);
    lease.on('lost', (error: Error) => this.onLost(lease, error));
    lease.on('keepaliveSucceeded', () => {
      lastKeepalive = this.now();
      if (lease !== this.lease || this.leaseIdValue === undefined) return;
      this.lastKeepalive = lastKeepalive;
      this.armStaleTimer();
      this.emit({ type: 'keepaliveSucceeded', leaseId: this.leaseIdValue });
    });
    // etcd3 types this payload as a keepalive response; at runtime it is the error.
    const emitter: EventEmitter = lease;
    emitter.on('keepaliveFailed', (error: Error) => {
      if (lease === this.lease && this.leaseIdValue !== undefined) this.emit({ type: 'keepaliveFailed', leaseId: this.leaseIdValue, error });
    });
    let leaseId: string;
    try {
      leaseId = await store.call(() => lease.grant());
      if (!this.closed()) await this.options.attach?.(leaseId);
    } catch (err) {
      await this.dispose(lease, true).catch(() => undefined);
      throw err;
    }
    if (this.closed()) {
      // close() came meanwhile: it waits for us, and this lease is ours to drop.
      await this.dispose(lease, true).catch(() => undefined);
      return;
    }
    this.lease = lease;
    this.leaseIdValue = leaseId;
    this.lastKeepalive = lastKeepalive;
    this.stateValue = 'held';
    this.armStaleTimer();
    this.emit({ type: kind, leaseId });
  }

  /** Fires once the safety window closes with no keepalive in between. */
  private armStaleTimer(): void {
    clearTimeout(this.staleTimer);
    const dueIn = this.lastKeepalive + this.windowMs - this.now();
    this.staleTimer = setTimeout(() => {
      this.staleTimer = undefined;
      const leaseId = this.leaseIdValue;
      if (this.stateValue !== 'held' || leaseId === undefined || this.isFresh()) return;
      this.emit({ type: 'stale', leaseId, sinceKeepaliveMs: this.now() - this.lastKeepalive });
    }, Math.max(0, dueIn) + 1);
    this.staleTimer.unref();
  }

  private onLost(lease: Lease, error: Error): void {
    const leaseId = this.leaseIdValue;
    if (lease !== this.lease || this.stateValue !== 'held' || leaseId === undefined) return;
    this.drop();
    this.stateValue = 'lost';
    this.emit({ type: 'lost', leaseId, error });
    // A listener may have closed the keeper.
    if (this.stateValue === 'lost') void this.track(this.grantUntilHeld('regranted'));
  }
}
