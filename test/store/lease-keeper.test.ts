import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { isTitanError } from '../../pkg/model/index.js';
import { LeaseKeeper, Store, type LeaseKeeperEvent, type LeaseKeeperOptions } from '../../pkg/store/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.js';
import { waitFor } from '../harness/wait.js';

const ctx = etcdSuite('lease-keeper');

const TTL_SECONDS = 3;

interface Captured {
  logger: Logger;
  lines: Array<Record<string, unknown>>;
}

function captureLogger(): Captured {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

let keepers: LeaseKeeper[] = [];
let stores: Store[] = [];
let proxy: TcpProxy | undefined;

afterEach(async () => {
  for (const keeper of keepers) await keeper.close({ revoke: true }).catch(() => undefined);
  for (const store of stores) store.close();
  await proxy?.cut();
  keepers = [];
  stores = [];
  proxy = undefined;
});

/** A keeper whose attach puts `heldKey()` under the lease, and the events it emitted. */
function keeperOn(store: Store, extra: Partial<LeaseKeeperOptions> = {}): { keeper: LeaseKeeper; events: LeaseKeeperEvent[]; attached: string[] } {
  const attached: string[] = [];
  const keeper = new LeaseKeeper({
    store,
    ttlSeconds: TTL_SECONDS,
    logger: captureLogger().logger,
    attach: async (leaseId) => {
      await store.client.put(heldKey()).value(leaseId).lease(leaseId).exec();
      attached.push(leaseId);
    },
    ...extra,
  });
  keepers.push(keeper);
  const events: LeaseKeeperEvent[] = [];
  keeper.on((event) => void events.push(event));
  return { keeper, events, attached };
}

const heldKey = (): string => `${ctx.store.keys.root}/held`;
/** What etcd itself holds under the key (read without the keeper's connection). */
const heldNow = (): Promise<string | null> => ctx.store.client.get(heldKey()).string();
const types = (events: LeaseKeeperEvent[]): string[] => events.map((e) => e.type).filter((t) => t !== 'keepaliveSucceeded' && t !== 'keepaliveFailed');

describe('LeaseKeeper', () => {
  it('grants, attaches, and keeps the lease fresh across several TTLs; close with revoke drops its keys', async () => {
    const { keeper, events, attached } = keeperOn(ctx.store);
    await keeper.start();
    expect(keeper.state).toBe('held');
    expect(attached).toEqual([keeper.leaseId]);
    expect(events[0]).toEqual({ type: 'granted', leaseId: keeper.leaseId });

    const until = Date.now() + (TTL_SECONDS + 1) * 1000;
    while (Date.now() < until) {
      expect(keeper.isFresh()).toBe(true);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(events.filter((e) => e.type === 'keepaliveSucceeded').length).toBeGreaterThanOrEqual(2);
    expect(types(events)).toEqual(['granted']);
    expect(await heldNow()).toBe(keeper.leaseId);

    await keeper.close({ revoke: true });
    expect(keeper.state).toBe('closed');
    expect(keeper.isFresh()).toBe(false);
    expect(await heldNow()).toBeNull();
    expect(types(events)).toEqual(['granted', 'closed']);
    expect(events.at(-1)).toEqual({ type: 'closed', revoked: true });
  });

  it('cut off from etcd: stale before one TTL since the last keepalive (while etcd still holds the lease), then lost, and granted again once etcd answers', async () => {
    proxy = await startTcpProxy(ctx.etcd.endpoints);
    const viaProxy = new Store({ endpoints: [proxy.endpoint], prefix: ctx.prefix });
    stores.push(viaProxy);
    const { keeper, events, attached } = keeperOn(viaProxy);
    await keeper.start();
    const firstLease = keeper.leaseId;

    let staleSeen: { sinceKeepaliveMs: number; sinceLastKeepaliveAt: number; fresh: boolean; heldInEtcd: Promise<string | null> } | undefined;
    keeper.on((event) => {
      if (event.type !== 'stale') return;
      staleSeen = {
        sinceKeepaliveMs: event.sinceKeepaliveMs,
        sinceLastKeepaliveAt: Date.now() - keeper.lastKeepaliveAt,
        fresh: keeper.isFresh(),
        // Asked at once: etcd has not expired the lease yet, so its key is still there.
        heldInEtcd: heldNow(),
      };
    });

    await proxy.cut();
    const stale = await waitFor('the lease to turn stale', () => staleSeen, 10_000);
    expect(stale.sinceKeepaliveMs).toBeGreaterThanOrEqual(keeper.safetyWindowMs);
    expect(stale.sinceKeepaliveMs).toBeLessThan(TTL_SECONDS * 1000);
    expect(stale.sinceLastKeepaliveAt).toBeLessThan(TTL_SECONDS * 1000);
    expect(stale.fresh).toBe(false);
    expect(await stale.heldInEtcd).toBe(firstLease);
    expect(keeper.state).toBe('held'); // stale keeps the lease: a keepalive that gets through would make it fresh again

    // etcd expires the lease a TTL after the last keepalive it saw; etcd3 says `lost` only at 2 × TTL.
    await waitFor('etcd to expire the lease', async () => (await heldNow()) === null, 10_000);
    await waitFor('the keeper to see the lease lost', () => events.some((e) => e.type === 'lost'), 15_000);
    expect(keeper.isFresh()).toBe(false);
    expect(keeper.leaseId).toBeUndefined();
    await waitFor('a failed re-grant while cut off', () => events.some((e) => e.type === 'grantFailed'), 15_000);

    await proxy.restore();
    const regranted = await waitFor('the lease to be granted again', () => events.find((e) => e.type === 'regranted'), 30_000);
    expect(regranted).toEqual({ type: 'regranted', leaseId: keeper.leaseId });
    expect(keeper.leaseId).not.toBe(firstLease);
    expect(keeper.isFresh()).toBe(true);
    expect(attached).toEqual([firstLease, keeper.leaseId]);
    expect(await heldNow()).toBe(keeper.leaseId);

    const order = [...new Set(types(events))];
    expect(order).toEqual(['granted', 'stale', 'lost', 'grantFailed', 'regranted']);
    const failed = events.filter((e) => e.type === 'grantFailed');
    expect(failed.map((e) => e.attempt)).toEqual(failed.map((_, i) => i));
  }, 60_000);

  it('regrant gives the held lease up and grants a new one; a regrant naming an older lease does nothing', async () => {
    const { keeper, events, attached } = keeperOn(ctx.store);
    await keeper.start();
    const first = keeper.leaseId ?? '';
    keeper.regrant(first, 'test');
    expect(keeper.isFresh()).toBe(false);
    const regranted = await waitFor('the new lease', () => events.find((e) => e.type === 'regranted'));
    expect(regranted).toMatchObject({ leaseId: keeper.leaseId });
    expect(keeper.leaseId).not.toBe(first);
    expect(attached).toEqual([first, keeper.leaseId]);

    keeper.regrant(first, 'stale caller');
    expect(keeper.state).toBe('held');
    expect(types(events)).toEqual(['granted', 'regranted']);
  });

  it('a failed attach revokes its lease: start rejects, or with retry tries again with backoff', async () => {
    let failures = 2;
    const attempt = async (store: Store, leaseId: string): Promise<void> => {
      await store.client.put(heldKey()).value(leaseId).lease(leaseId).exec();
      if (failures-- > 0) throw new Error('attach refused');
    };

    const once = keeperOn(ctx.store, { attach: (leaseId) => attempt(ctx.store, leaseId) });
    await expect(once.keeper.start()).rejects.toThrow('attach refused');
    expect(once.keeper.leaseId).toBeUndefined();
    expect(await heldNow()).toBeNull(); // revoked with its lease

    const retried = keeperOn(ctx.store, { attach: (leaseId) => attempt(ctx.store, leaseId), retryInitialDelayMs: 20, retryMaxDelayMs: 100 });
    await retried.keeper.start({ retry: true });
    expect(retried.keeper.state).toBe('held');
    expect(types(retried.events)).toEqual(['grantFailed', 'granted']);
    expect(retried.events[0]).toMatchObject({ type: 'grantFailed', attempt: 0, error: new Error('attach refused') });
    expect(await heldNow()).toBe(retried.keeper.leaseId);
  });

  it('close without revoke leaves the keys to the lease TTL; close during a retry wait ends it', async () => {
    const { keeper, events } = keeperOn(ctx.store);
    await keeper.start();
    await keeper.close({ revoke: false });
    expect(events.at(-1)).toEqual({ type: 'closed', revoked: false });
    expect(await heldNow()).not.toBeNull();
    await waitFor('the released lease to lapse', async () => (await heldNow()) === null, 10_000);

    // A retry wait far longer than the bound below: only the close can have ended it, at any load.
    const failing = keeperOn(ctx.store, { attach: () => Promise.reject(new Error('never')), retryInitialDelayMs: 120_000, retryMaxDelayMs: 120_000 });
    const started = failing.keeper.start({ retry: true });
    await waitFor('a failed grant', () => failing.events.some((e) => e.type === 'grantFailed'));
    const closedAt = Date.now();
    await failing.keeper.close({ revoke: true });
    await started;
    expect(Date.now() - closedAt).toBeLessThan(30_000);
    expect(types(failing.events)).toEqual(['grantFailed', 'closed']);
  });

  it('an exception in a listener is logged with err and does not stop the others', async () => {
    const { logger, lines } = captureLogger();
    const { keeper, events } = keeperOn(ctx.store, { logger });
    keeper.on(() => {
      throw new Error('listener bug');
    });
    const later: string[] = [];
    keeper.on((event) => void later.push(event.type));
    await keeper.start();
    expect(events[0]?.type).toBe('granted');
    expect(later[0]).toBe('granted');
    const logged = lines.find((l) => l.msg === 'a lease event listener failed');
    expect(logged).toMatchObject({ event: 'granted', err: { message: 'listener bug' } });
  });

  it('refuses a TTL the safety margin leaves no time in', () => {
    try {
      new LeaseKeeper({ store: ctx.store, ttlSeconds: 1, safetyMarginMs: 1000, logger: captureLogger().logger });
      expect.unreachable();
    } catch (err) {
      expect(isTitanError(err) && err.code).toBe('InvalidInput');
    }
  });
});
