import type { ICompare } from 'etcd3';
import type { Logger } from 'pino';
import { storageFullMessage, type StorageAlarm } from '../../pkg/model/index.js';
import { encode, txnOp, type Store } from '../../pkg/store/index.js';
import { PeriodicTask } from './periodic.js';

/** Past this share of the quota, submits are refused (docs/security.md, "Bounded resources"). */
export const STORAGE_HIGH_WATER = 0.8;
/** The refusal is lifted only below this share, so it does not flap around the mark. */
export const STORAGE_LOW_WATER = 0.7;
export const DEFAULT_STORAGE_CHECK_MS = 10_000;

export interface StorageReading {
  dbSize: number;
  dbSizeInUse: number;
  nospace: boolean;
  /** Whether submits are refused after this reading. */
  full: boolean;
}

/**
 * The leader watches etcd's database against its quota. etcd refuses every
 * write once the database reaches --quota-backend-bytes (its NOSPACE alarm),
 * which would stop running jobs from reporting their ends and logs. Well
 * before that, past STORAGE_HIGH_WATER of the quota (or with NOSPACE already
 * raised), the leader publishes keys.storageAlarm(): Store.createJobs then
 * refuses new jobs atomically, and `onPressure` speeds up retention. Nothing
 * accepted is dropped: pending and running jobs go on.
 *
 * etcd's quota counts the database's physical size (dbSize), which only a
 * defragmentation shrinks; dbSizeInUse is logged next to it.
 */
export class StorageWatch {
  private readonly task: PeriodicTask;
  private pressure = false;

  constructor(
    private readonly store: Store,
    private readonly quotaBytes: number,
    intervalMs: number,
    private readonly isLeader: () => boolean,
    private readonly guard: () => ICompare[],
    private readonly onPressure: (full: boolean) => void,
    private readonly logger: Logger,
  ) {
    this.task = new PeriodicTask(intervalMs, async () => {
      if (!this.isLeader()) return;
      await this.check().catch((err: unknown) => this.logger.warn({ err }, 'could not check etcd storage; retrying at the next tick'));
    });
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  async check(now = Date.now()): Promise<StorageReading> {
    const { client, keys } = this.store;
    const status = await this.store.call(() => client.maintenance.status());
    const alarms = await this.store.call(() => client.maintenance.alarm({ action: 'Get', memberID: 0, alarm: 'None' }));
    const dbSize = Number(status.dbSize);
    const dbSizeInUse = Number(status.dbSizeInUse);
    const nospace = alarms.alarms.some((a) => String(a.alarm) === 'Nospace' || String(a.alarm) === '1');
    const share = dbSize / this.quotaBytes;
    const key = keys.storageAlarm();
    const published = (await this.store.call(() => client.kv.range({ key: Buffer.from(key), count_only: true }))).count !== '0';
    const full = nospace || share >= STORAGE_HIGH_WATER || (published && share >= STORAGE_LOW_WATER);
    const figures = { dbSize, dbSizeInUse, quotaBytes: this.quotaBytes, nospace };
    if (full && !published) {
      const alarm: StorageAlarm = { since: now, ...figures };
      // Under NOSPACE etcd refuses this put too (and a refused write counts against the client's circuit
      // breaker): createJobs gets etcd's own refusal instead, turned into the same message.
      if (!nospace) await this.store.txn(this.guard(), [txnOp.put(key, encode(alarm))]);
      if (!this.pressure) this.logger.error(figures, storageFullMessage(alarm));
    } else if (!full && published) {
      await this.store.txn(this.guard(), [txnOp.del(key)]);
      this.logger.warn(figures, 'etcd storage below the low-water mark again: submits are accepted');
    }
    if (full !== this.pressure) {
      this.pressure = full;
      this.onPressure(full);
    }
    return { dbSize, dbSizeInUse, nospace, full };
  }
}
