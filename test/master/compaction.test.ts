import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Compactor, compactionTarget, lowestActiveDelivery } from '../../internal/master/compaction.js';
import { Master, resolveMasterConfig } from '../../internal/master/index.js';
import { encode, Store } from '../../pkg/store/index.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { randomPrefix, waitFor } from '../harness/wait.js';

describe('compactionTarget', () => {
  const marks = [
    { revision: 10n, at: 0 },
    { revision: 20n, at: 1000 },
    { revision: 30n, at: 2000 },
  ];
  it('is the newest revision seen at least the history window ago', () => {
    expect(compactionTarget(marks, 0n, 2500, 1000)).toBe(20n);
    expect(compactionTarget(marks, 0n, 3000, 1000)).toBe(30n);
    expect(compactionTarget(marks, 0n, 900, 1000)).toBeUndefined();
  });
  it('never goes backwards or past what the watches delivered', () => {
    expect(compactionTarget(marks, 20n, 2500, 1000)).toBeUndefined();
    expect(compactionTarget(marks, 0n, 3000, 1000, 15n)).toBe(15n);
    expect(compactionTarget(marks, 15n, 3000, 1000, 15n)).toBeUndefined();
  });
});

describe('lowestActiveDelivery', () => {
  it('is the lowest revision of the informers that delivered within the window', () => {
    const now = 10_000;
    expect(lowestActiveDelivery([{ revision: 50n, at: 9500 }, { revision: 40n, at: 9900 }, undefined], now, 1000)).toBe(40n);
    // Idle for longer than the window: caught up, holds nothing back.
    expect(lowestActiveDelivery([{ revision: 50n, at: 9500 }, { revision: 5n, at: 1000 }], now, 1000)).toBe(50n);
    expect(lowestActiveDelivery([{ revision: 5n, at: 1000 }], now, 1000)).toBeUndefined();
  });
});

describe('Compactor', () => {
  let etcd: EtcdServer;
  let store: Store;
  const silent = pino({ level: 'silent' });
  beforeAll(async () => {
    etcd = await startEtcd({ name: 'compaction' });
    store = new Store({ endpoints: [etcd.endpoints], prefix: randomPrefix() });
  });
  afterAll(async () => {
    store?.close();
    await etcd?.stop();
  });

  const write = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await store.client.put(store.keys.node(`n${i}`)).value(encode({ i }));
  };
  const readableAt = async (revision: bigint): Promise<boolean> => {
    try {
      await store.client.kv.range({ key: Buffer.from(store.keys.node('n0')), revision: String(revision), count_only: true });
      return true;
    } catch (err) {
      if (/compacted/i.test((err as Error).message)) return false;
      throw err;
    }
  };

  it('compacts to the revision it saw one window ago, once per window, and keeps everything younger readable', async () => {
    await write(5);
    const compactor = new Compactor(store, 1000, () => true, () => undefined, silent);
    expect(await compactor.tick(0)).toBeUndefined(); // marks the revision, nothing is a window old yet
    const marked = BigInt(await store.currentRevision());
    await write(5);
    expect(await compactor.tick(500)).toBeUndefined();
    expect(await compactor.tick(1000)).toBe(marked);
    expect(await readableAt(marked - 1n)).toBe(false);
    expect(await readableAt(marked)).toBe(true);
    expect(await readableAt(marked + 3n)).toBe(true);
    // At most one compaction per window, then to the revision marked a window before.
    const next = BigInt(await store.currentRevision());
    await write(2);
    expect(await compactor.tick(1500)).toBeUndefined();
    expect(await compactor.tick(2000)).toBe(next);
  });

  it('stops at what the watches delivered, and does nothing while not leading', async () => {
    await write(3);
    const before = BigInt(await store.currentRevision());
    const follower = new Compactor(store, 1000, () => false, () => undefined, silent);
    expect(await follower.tick(0)).toBeUndefined();
    expect(await follower.tick(5000)).toBeUndefined();

    const capped = new Compactor(store, 1000, () => true, () => before - 1n, silent);
    await capped.tick(0);
    await write(3);
    expect(await capped.tick(2000)).toBe(before - 1n);
    expect(await readableAt(before - 1n)).toBe(true);
  });

  it('treats a compaction someone else already did as done', async () => {
    await write(2);
    const compactor = new Compactor(store, 1000, () => true, () => undefined, silent);
    await compactor.tick(0);
    const marked = BigInt(await store.currentRevision());
    await write(2);
    await store.compact(await store.currentRevision()); // further than the compactor will go
    expect(await compactor.tick(1000)).toBe(marked);
  });

  it('says once that compaction fails while etcd is away, and once that it works again', async () => {
    const own = await startEtcd({ name: 'compaction-outage' });
    const ownStore = new Store({ endpoints: [own.endpoints], prefix: randomPrefix(), callTimeoutMs: 500 });
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(String(JSON.parse(line).msg)) });
    const compactor = new Compactor(ownStore, 200, () => true, () => undefined, logger);
    // Counts the ticks that failed (the compactor logs only the first).
    let failedTicks = 0;
    const tick = compactor.tick.bind(compactor);
    compactor.tick = (now) => tick(now).catch((err: unknown) => {
      failedTicks++;
      throw err;
    });
    compactor.start();
    try {
      await own.kill();
      await waitFor('the failure to be logged', () => lines.includes('compaction failed; retrying every tick'), 10_000);
      const loggedAt = failedTicks;
      await waitFor('three more failing ticks', () => failedTicks >= loggedAt + 3, 20_000);
      await own.restart();
      await waitFor('the recovery to be logged', () => lines.includes('compaction works again'), 20_000);
      expect(lines.filter((l) => l.startsWith('compaction failed'))).toHaveLength(1);
    } finally {
      await compactor.stop();
      ownStore.close();
      await own.stop();
    }
  }, 40_000);
});


describe('compaction is opt-down: etcd may be shared', () => {
  it('defaults to a 5-minute window, takes a shorter one, and off never compacts', () => {
    expect(resolveMasterConfig({}, {}).compactHistoryMs).toBe(5 * 60_000);
    expect(resolveMasterConfig({ compactHistory: '5s' }, {}).compactHistoryMs).toBe(5000);
    expect(resolveMasterConfig({}, { TITAN_MASTER_COMPACT_HISTORY: 'off' }).compactHistoryMs).toBe(0);
    expect(() => resolveMasterConfig({ compactHistory: '0s' }, {})).toThrow(/--compact-history: must be more than zero/);
  });

  it("a leading master with --compact-history off leaves etcd's history alone; with a window it compacts", async () => {
    const own = await startEtcd({ name: 'compaction-off' });
    const ownStore = new Store({ endpoints: [own.endpoints], prefix: randomPrefix() });
    /** Another application's older value, and a read of it at its revision (undefined once compacted away). */
    const otherAppHistory = async (label: string): Promise<() => Promise<string | undefined>> => {
      await ownStore.client.put('/other-app/k').value(`before ${label}`);
      const first = await ownStore.currentRevision();
      await ownStore.client.put('/other-app/k').value('after');
      return async () => {
        const old = await ownStore.client.kv.range({ key: Buffer.from('/other-app/k'), revision: first }).catch(() => undefined);
        return old?.kvs[0]?.value.toString();
      };
    };
    const leadingMaster = async (compactHistory: string): Promise<Master> => {
      const master = new Master(resolveMasterConfig({ endpoints: own.endpoints, prefix: randomPrefix(), leaseTtl: '2', compactHistory }, {}), pino({ level: 'silent' }));
      await master.start();
      await waitFor('leadership', () => master.isLeader() || undefined);
      return master;
    };
    try {
      // With a window: the older value goes, however long the compaction takes on this machine.
      const windowed = await otherAppHistory('500ms');
      const compacting = await leadingMaster('500ms');
      const leadAt = Date.now();
      try {
        expect(await windowed()).toBe('before 500ms');
        await waitFor('the older value compacted away', async () => (await windowed()) === undefined, 60_000);
      } finally {
        await compacting.stop();
      }
      const compactedAfterMs = Date.now() - leadAt;
      // Off: a master leads twice as long as the windowed one needed to compact (at least 2.5 s) and the value stays.
      const kept = await otherAppHistory('off');
      const idle = await leadingMaster('off');
      try {
        await new Promise((resolve) => setTimeout(resolve, Math.max(2500, 2 * compactedAfterMs)));
        expect(await kept()).toBe('before off');
      } finally {
        await idle.stop();
      }
    } finally {
      ownStore.close();
      await own.stop();
    }
  }, 180_000);
});
