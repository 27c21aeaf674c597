import { EventEmitter } from 'node:events';
import type { ICompare, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { cancelWatcher, LeaseKeeper, type LeaderInfo, type LeaseKeeperEvent, type Store } from '../../pkg/store/index.js';

/** What a master writes into the leader key when it campaigns; the policy is published for `titan nodes`. */
export type LeaderRecord = Required<LeaderInfo>;

type State = 'follower' | 'leader' | 'stopped';

/** A leader steps down this long before its lease could lapse. */
const SAFETY_MARGIN_MS = 500;
/** Pause before campaigning again once the leader key was seen gone. */
const VACANCY_PAUSE_MS = 50;

/**
 * Leader election on one key under the master's lease (a LeaseKeeper). The
 * key's create revision names the term; every write a leader makes is
 * guarded by "the leader key still has my term", so a deposed leader whose
 * lease ran out can commit nothing.
 *
 * etcd3 reports the lease lost only after 2×TTL, so leadership also ends as
 * soon as the keeper calls the lease stale (no keepalive for TTL minus a
 * margin); the stale lease is given up and the master campaigns again on a
 * new one.
 *
 * Events: 'elected' (term), 'deposed' (reason).
 */
export class Leadership extends EventEmitter {
  private state: State = 'follower';
  private term: string | undefined;
  /** The lease the leader key was written under, while leader. */
  private termLease: string | undefined;
  private readonly keeper: LeaseKeeper;
  private watcher: Watcher | undefined;
  private campaigning = false;
  /** A lease came while a campaign ran: campaign again on it when that one ends. */
  private campaignAgain = false;

  constructor(
    private readonly store: Store,
    private readonly record: LeaderRecord,
    ttlSeconds: number,
    private readonly logger: Logger,
  ) {
    super();
    this.keeper = new LeaseKeeper({ store, ttlSeconds, safetyMarginMs: SAFETY_MARGIN_MS, logger, retryInitialDelayMs: 100 });
    this.keeper.on((event) => this.onLeaseEvent(event));
  }

  /** Leader, and its lease is certainly alive. */
  isLeader(): boolean {
    return this.state === 'leader' && this.keeper.isFresh();
  }

  /** Lost its campaign and watches the leader key for a vacancy (a standby). */
  isStandingBy(): boolean {
    return this.watcher !== undefined;
  }

  /** Compares that fence a write to the current term; a follower's guard never holds. */
  guard(): ICompare[] {
    return [this.store.leaderGuard(this.term ?? '-1')];
  }

  start(): void {
    void this.keeper.start({ retry: true });
  }

  async stop(): Promise<void> {
    const wasLeader = this.state === 'leader';
    const term = this.term;
    this.state = 'stopped';
    if (this.watcher) await cancelWatcher(this.watcher);
    if (wasLeader && term) await this.store.resign(term).catch(() => undefined);
    await this.keeper.close({ revoke: true }).catch(() => undefined);
  }

  private onLeaseEvent(event: LeaseKeeperEvent): void {
    switch (event.type) {
      case 'granted':
      case 'regranted':
        void this.campaign();
        break;
      case 'stale':
        if (this.state !== 'leader' || this.termLease !== event.leaseId) break;
        this.stepDown(`no keepalive for ${event.sinceKeepaliveMs} ms`);
        // The leader key stays until etcd expires this lease: campaign on a new one, which waits for that.
        this.keeper.regrant(event.leaseId, 'the leader lease went stale');
        break;
      case 'lost':
        this.logger.warn({ err: event.error }, 'master lease lost');
        this.stepDown('lease lost');
        break;
      case 'grantFailed':
        this.logger.warn({ err: event.error, retryInMs: Math.round(event.delayMs) }, 'campaign failed; retrying');
        break;
      case 'keepaliveSucceeded':
      case 'keepaliveFailed':
      case 'closed':
        break;
    }
  }

  private async campaign(): Promise<void> {
    if (this.state !== 'follower') return;
    if (this.campaigning) {
      this.campaignAgain = true;
      return;
    }
    this.campaigning = true;
    try {
      await this.campaignOnHeldLease();
    } finally {
      this.campaigning = false;
    }
    if (this.campaignAgain) {
      this.campaignAgain = false;
      void this.campaign();
    }
  }

  /** Campaigns while a follower on the lease the keeper holds; a new lease campaigns again (the 'granted' events). */
  private async campaignOnHeldLease(): Promise<void> {
    while (this.isFollower()) {
      const leaseId = this.keeper.leaseId;
      if (leaseId === undefined) return;
      this.campaignAgain = false;
      try {
        const { won, term } = await this.store.campaign(this.record, leaseId);
        if (!this.isFollower()) {
          if (won) await this.store.resign(term).catch(() => undefined);
          return;
        }
        if (won) {
          if (leaseId !== this.keeper.leaseId || !this.keeper.isFresh()) {
            // Won on a lease that is gone or stale meanwhile: nothing would fence this term in time.
            await this.store.resign(term).catch(() => undefined);
            this.keeper.regrant(leaseId, 'won on a stale lease');
            continue;
          }
          this.term = term;
          this.termLease = leaseId;
          this.state = 'leader';
          this.logger.info({ term }, 'elected leader');
          this.emit('elected', term);
          return;
        }
        await this.waitForVacancy(term);
        await new Promise((r) => setTimeout(r, VACANCY_PAUSE_MS));
      } catch (err) {
        this.logger.warn({ err }, 'campaign failed; retrying');
        // As etcd may no longer know this lease: a new one (the keeper backs off), whose grant campaigns again.
        this.keeper.regrant(leaseId, 'campaign failed');
        return;
      }
    }
  }

  /** A method, not a field read, so TypeScript does not narrow the state across awaits. */
  private isFollower(): boolean {
    return this.state === 'follower';
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
    this.termLease = undefined;
    this.logger.warn({ reason }, 'no longer leader');
    this.emit('deposed', reason);
  }
}
