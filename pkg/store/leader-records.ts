import type { ICompare } from 'etcd3';
import { encode, records, type LeaderInfo } from './codec.js';
import { StoreCore } from './store-core.js';
import { txnCompare, txnOp } from './txn.js';

/** The leader key: who leads and since which revision (the term), the compare that fences a leader's writes. */
export abstract class LeaderRecords extends StoreCore {
  /** Takes the leader key under a lease if nobody holds it; the key's create revision identifies the term. */
  async campaign<T>(holder: T, leaseId: string): Promise<{ won: boolean; term: string }> {
    const key = this.keys.leader();
    const put = txnOp.put(key, encode(holder), leaseId);
    for (let attempt = 0; ; attempt++) {
      const res = await this.call(() => this.client.kv.txn({ compare: [txnCompare.absent(key)], success: [put], failure: [txnOp.get(key)] }));
      if (res.succeeded) return { won: true, term: res.header.revision };
      const held = res.responses[0]?.response_range?.kvs[0];
      if (!held || held.lease !== '0' || attempt > 0) return { won: false, term: held?.create_revision ?? '0' };
      // Every master writes the key under its lease: one without is no leader's (written around Titan) and would
      // block every campaign forever. It goes, only if unchanged, and the campaign runs again.
      await this.txn([txnCompare.modRevision(key, held.mod_revision)], [txnOp.del(key)]);
    }
  }
  /**
   * The current leadership term (the leader key's create revision), or
   * undefined when no master leads. The holder's record is not decoded:
   * whatever it holds, the key is taken.
   */
  async leaderTerm(): Promise<string | undefined> {
    const res = await this.call(() => this.client.kv.range({ key: Buffer.from(this.keys.leader()), keys_only: true }));
    return res.kvs[0]?.create_revision;
  }
  /** The current leader's record, or undefined when no master leads. */
  async getLeader(): Promise<LeaderInfo | undefined> {
    return (await this.get(this.keys.leader(), records.leader))?.value;
  }
  /** Compare that holds only while the given leadership term is current. */
  leaderGuard(term: string): ICompare {
    return txnCompare.createRevision(this.keys.leader(), term);
  }
  /** Gives up leadership of a term (no-op if the term already ended). */
  async resign(term: string): Promise<void> {
    await this.txn([this.leaderGuard(term)], [txnOp.del(this.keys.leader())]);
  }
}
