import { EventEmitter } from 'node:events';
import type { ICompare, Lease, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { cancelWatcher, type LeaderInfo, type Store } from '../../pkg/store/index.js';

/** What a master writes into the leader key when it campaigns; the policy is published for `titan nodes`. */
export type LeaderRecord = Required<LeaderInfo>;

type State = 'follower' | 'leader' | 'stopped';

/**
 * Leader election on one lease-held key. The key's create revision names the
 * term; every write a leader makes is guarded by "the leader key still has my
 * term", so a deposed leader whose lease ran out can commit nothing.
 *
 * The lease's own `lost` event can come as late as 2×TTL, so leadership also
 * ends when no keepalive has succeeded for TTL minus a margin.
 *
 * Events: 'elected' (term), 'deposed' (reason).
 */
export class Leadership extends EventEmitter {
  private state: State = 'follower';
  private term: string | undefined;
  private lease: Lease | undefined;
  private lastKeepalive = 0;
  private healthTimer: NodeJS.Timeout | undefined;
  private watcher: Watcher | undefined;
  private campaigning = false;

  constructor(
    private readonly store: Store,
    private readonly record: LeaderRecord,
    private readonly ttlSeconds: number,
    private readonly logger: Logger,
  ) {
    super();
  }

  isLeader(): boolean {
    return this.state === 'leader';
  }

  /** Compares that fence a write to the current term; a follower's guard never holds. */
  guard(): ICompare[] {
    return [this.store.leaderGuard(this.term ?? '-1')];
  }

  start(): void {
    this.healthTimer = setInterval(() => this.checkHealth(), 250);
    void this.campaign();
  }

  async stop(): Promise<void> {
    const wasLeader = this.state === 'leader';
    const term = this.term;
    this.state = 'stopped';
    clearInterval(this.healthTimer);
    if (this.watcher) await cancelWatcher(this.watcher);
    if (wasLeader && term) await this.store.resign(term).catch(() => undefined);
    await this.lease?.revoke().catch(() => undefined);
  }

  private newLease(): Lease {
    const lease = this.store.client.lease(this.ttlSeconds, { autoKeepAlive: true });
    lease.on('keepaliveSucceeded', () => (this.lastKeepalive = Date.now()));
    lease.on('lost', (err) => {
      if (this.lease !== lease) return;
      this.logger.warn({ err }, 'master lease lost');
      this.stepDown('lease lost');
      this.lease = undefined;
      void this.campaign();
    });
    return lease;
  }

  private async campaign(): Promise<void> {
    if (this.campaigning || this.state === 'stopped') return;
    this.campaigning = true;
    try {
      for (let delay = 100; this.state === 'follower'; delay = Math.min(delay * 2, 2000)) {
        try {
          if (!this.lease) this.lease = this.newLease();
          const leaseId = await this.lease.grant();
          this.lastKeepalive = Date.now();
          const { won, term } = await this.store.campaign(this.record, leaseId);
          if (this.state !== 'follower') return;
          if (won) {
            this.term = term;
            this.state = 'leader';
            this.logger.info({ term }, 'elected leader');
            this.emit('elected', term);
            return;
          }
          await this.waitForVacancy(term);
          delay = 50;
        } catch (err) {
          this.logger.warn({ err }, 'campaign failed; retrying');
          if (this.lease) {
            this.lease.release();
            this.lease = undefined;
          }
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    } finally {
      this.campaigning = false;
    }
  }

  /** Resolves when the leader key of the given term is gone. */
  private async waitForVacancy(term: string): Promise<void> {
    if (term === '0') return;
    const watcher = await this.store.client.watch().key(this.store.keys.leader()).startRevision(term).create();
    this.watcher = watcher;
    try {
      await new Promise<void>((resolve) => {
        watcher.on('delete', () => resolve());
        watcher.on('put', (kv) => {
          if (kv.create_revision !== term) resolve();
        });
        watcher.on('error', () => resolve());
      });
    } finally {
      this.watcher = undefined;
      await cancelWatcher(watcher);
    }
  }

  private checkHealth(): void {
    if (this.state !== 'leader') return;
    const silentMs = Date.now() - this.lastKeepalive;
    if (silentMs > this.ttlSeconds * 1000 - 500) {
      this.stepDown(`no keepalive for ${silentMs} ms`);
      if (this.lease) {
        this.lease.release();
        this.lease = undefined;
      }
      void this.campaign();
    }
  }

  /** Called when a guarded write found the term over. */
  lostTerm(): void {
    if (this.state === 'leader') {
      this.stepDown('leader key changed');
      void this.campaign();
    }
  }

  private stepDown(reason: string): void {
    if (this.state !== 'leader') return;
    this.state = 'follower';
    this.term = undefined;
    this.logger.warn({ reason }, 'no longer leader');
    this.emit('deposed', reason);
  }
}
