import type { Logger } from '../../pkg/log/logger.js';
import type { NodeInfo } from '../../pkg/model/index.js';
import { LeaseKeeper, type LeaseKeeperEvent, type LeaseKeeperState, type Store } from '../../pkg/store/index.js';

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
  /** A failing event listener is logged here. */
  logger: Logger;
  now?: () => number;
}

/** Stop claiming work this long before the lease could lapse. */
const HEALTH_MARGIN_MS = 1000;

const STATES: Record<LeaseKeeperState, RegistrationState> = {
  idle: 'idle',
  granting: 'registering',
  held: 'registered',
  lost: 'lost',
  closed: 'stopped',
};

/**
 * The node's presence in etcd: the NodeInfo under a lease that the
 * LeaseKeeper holds. States go idle → registering → registered; a lost
 * lease goes lost → registering (retried with backoff) → registered again,
 * until stop() makes it stopped for good.
 */
export class Registration {
  private readonly keeper: LeaseKeeper;
  private readonly logger: Logger;
  private readonly listeners = new Set<(event: RegistrationEvent) => void>();

  constructor(options: RegistrationOptions) {
    const { store } = options;
    this.logger = options.logger;
    this.keeper = new LeaseKeeper({
      store,
      ttlSeconds: options.ttlSeconds,
      safetyMarginMs: HEALTH_MARGIN_MS,
      attach: (leaseId) => store.putNode(options.describe(), leaseId),
      logger: options.logger,
      now: options.now,
    });
    this.keeper.on((event) => this.forward(event));
  }

  get state(): RegistrationState {
    return STATES[this.keeper.state];
  }

  get leaseId(): string | undefined {
    return this.keeper.leaseId;
  }

  /** Subscribes to events; returns the unsubscribe function. */
  on(listener: (event: RegistrationEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The first registration; rejects (etcd unreachable) instead of retrying. */
  async start(): Promise<void> {
    if (this.keeper.state !== 'idle') throw new Error(`registration already ${this.state}`);
    await this.keeper.start();
  }

  /**
   * True while the lease is certainly alive: the last keepalive is recent
   * enough that the lease cannot lapse within the next second.
   */
  isHealthy(): boolean {
    return this.keeper.isFresh();
  }

  /** When the last keepalive (or the registration) succeeded, epoch ms. */
  get lastKeepaliveAt(): number {
    return this.keeper.lastKeepaliveAt;
  }

  /** revoke: the node vanishes at once; otherwise the lease just stops being renewed. */
  async stop(options: { revoke: boolean }): Promise<void> {
    await this.keeper.close(options);
  }

  /** The keeper's events in the worker's terms. */
  private forward(event: LeaseKeeperEvent): void {
    const translated = translate(event);
    for (const listener of this.listeners) {
      try {
        listener(translated);
      } catch (err) {
        // A listener's bug must not break the lease machinery.
        this.logger.error({ err, event: translated.type }, 'a registration event listener failed');
      }
    }
  }
}

function translate(event: LeaseKeeperEvent): RegistrationEvent {
  switch (event.type) {
    case 'granted':
    case 'regranted':
      return { type: 'registered', leaseId: event.leaseId };
    case 'keepaliveSucceeded':
      return { type: 'keepaliveSucceeded' };
    case 'keepaliveFailed':
      return { type: 'keepaliveFailed', error: event.error };
    case 'stale':
      return { type: 'unhealthy', sinceKeepaliveMs: event.sinceKeepaliveMs };
    case 'lost':
      return { type: 'lost', error: event.error };
    case 'grantFailed':
      return { type: 'retryFailed', error: event.error, attempt: event.attempt, delayMs: event.delayMs };
    case 'closed':
      return { type: 'stopped', revoked: event.revoked };
  }
}
