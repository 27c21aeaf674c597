import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Leadership, type LeaderRecord } from '../../internal/master/leadership.js';
import { Store } from '../../pkg/store/index.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { startTcpProxy, type TcpProxy } from '../harness/tcp-proxy.js';
import { waitFor } from '../harness/wait.js';

const ctx = etcdSuite('leadership');

const TTL_SECONDS = 2;
const logger = pino({ name: 'leadership-test', level: process.env.LOG_LEVEL ?? 'silent' });

const record = (id: string): LeaderRecord => ({ id, hostname: 'test', since: Date.now(), policy: 'binpack' });

let leaderships: Leadership[] = [];
let stores: Store[] = [];
let proxy: TcpProxy | undefined;

afterEach(async () => {
  for (const leadership of leaderships) await leadership.stop();
  for (const store of stores) store.close();
  await proxy?.cut();
  leaderships = [];
  stores = [];
  proxy = undefined;
});

function leadershipOn(store: Store, id: string): Leadership {
  const leadership = new Leadership(store, record(id), TTL_SECONDS, logger);
  leaderships.push(leadership);
  leadership.start();
  return leadership;
}

describe('leadership', () => {
  it('a leader cut off from etcd steps down before its lease can lapse; a standby takes over; the old leader campaigns again on a new lease', async () => {
    proxy = await startTcpProxy(ctx.etcd.endpoints);
    const viaProxy = new Store({ endpoints: [proxy.endpoint], prefix: ctx.prefix });
    stores.push(viaProxy);
    const a = leadershipOn(viaProxy, 'a');
    const elected: string[] = [];
    a.on('elected', (term: string) => elected.push(term));
    await waitFor('a to lead', () => a.isLeader());
    const [firstTerm] = elected;
    const b = leadershipOn(ctx.store, 'b');

    let deposed: { reason: string; leaderInEtcd: Promise<string | undefined> } | undefined;
    a.on('deposed', (reason: string) => {
      // Asked at once: etcd still holds a's lease and so its leader key.
      deposed = { reason, leaderInEtcd: ctx.store.leaderTerm() };
    });
    await proxy.cut();
    const stepDown = await waitFor('a to step down', () => deposed, 10_000);
    expect(stepDown.reason).toMatch(/^no keepalive for \d+ ms$/);
    expect(Number(/\d+/.exec(stepDown.reason)?.[0])).toBeLessThan(TTL_SECONDS * 1000);
    expect(await stepDown.leaderInEtcd).toBe(firstTerm);
    expect(a.isLeader()).toBe(false);
    expect(a.guard()).toEqual([ctx.store.leaderGuard('-1')]);

    await waitFor('b to take over once the lease lapsed', () => b.isLeader(), 15_000);
    const bTerm = await ctx.store.leaderTerm();
    expect(BigInt(bTerm ?? '0')).toBeGreaterThan(BigInt(firstTerm ?? '0'));

    await proxy.restore();
    // a is back, on a new lease, as a follower while b leads: it lost its campaign and watches for a vacancy.
    await waitFor('a to stand by behind b', () => a.isStandingBy(), 15_000);
    expect(a.isLeader()).toBe(false);
    expect(b.isLeader()).toBe(true);
    await b.stop();
    await waitFor('a to lead again', () => a.isLeader(), 20_000);
    expect(elected).toHaveLength(2);
    expect(await ctx.store.getLeader()).toMatchObject({ id: 'a' });
  }, 60_000);

  it('resigns on stop, and a standby takes over at once', async () => {
    const a = leadershipOn(ctx.store, 'a');
    await waitFor('a to lead', () => a.isLeader());
    const b = leadershipOn(ctx.store, 'b');
    await waitFor('b to stand by', () => b.isStandingBy());
    expect(b.isLeader()).toBe(false);
    const stoppedAt = Date.now();
    await a.stop();
    await waitFor('b to lead', () => b.isLeader(), 5000);
    expect(Date.now() - stoppedAt).toBeLessThan(TTL_SECONDS * 1000);
    expect(await ctx.store.getLeader()).toMatchObject({ id: 'b' });
  });

  it('lostTerm steps down and campaigns again', async () => {
    const a = leadershipOn(ctx.store, 'a');
    const reasons: string[] = [];
    a.on('deposed', (reason: string) => reasons.push(reason));
    await waitFor('a to lead', () => a.isLeader());
    const term = (await ctx.store.leaderTerm()) ?? '';
    await ctx.store.resign(term);
    a.lostTerm();
    expect(reasons).toEqual(['leader key changed']);
    await waitFor('a to lead a new term', async () => a.isLeader() && (await ctx.store.leaderTerm()) !== term);
  });
});
