import { TitanError } from '../model/errors.js';
import type { NodeInfo } from '../model/node.js';
import { CorruptRecordError, encode, records } from './codec.js';
import { MAX_CAS_RETRIES, StoreCore, type ReadResult } from './store-core.js';
import { txnCompare, txnOp } from './txn.js';
import type { Versioned } from './versioned.js';

/** Node registrations, each under its worker's lease. */
export abstract class NodeRecords extends StoreCore {
  /**
   * Registers (or refreshes) a node under its lease: the key vanishes when the
   * lease does. Only while the key is absent or names the same `instance` (this
   * worker, or its restart from the same state dir): a second worker started
   * with a live node's id is refused instead of overwriting it. A key under no
   * lease, or one that does not read, is no live worker's and is taken over.
   * Each case is one compare-and-put; a change in between is looked at again.
   */
  async putNode(info: NodeInfo, leaseId: string): Promise<void> {
    const key = this.keys.node(info.id);
    const put = txnOp.put(key, encode(info), leaseId);
    for (let tries = 0; tries < MAX_CAS_RETRIES; tries++) {
      const res = await this.call(() => this.client.kv.txn({ compare: [txnCompare.absent(key)], success: [put], failure: [txnOp.get(key)] }));
      if (res.succeeded) return;
      const held = res.responses[0]?.response_range?.kvs[0];
      if (!held) continue; // gone meanwhile: absent again
      let instance: string | undefined;
      let live = held.lease !== '0'; // every worker registers under its lease: a key without one is no worker's
      try {
        instance = records.node.decode(held.value, key).instance;
      } catch (err) {
        if (!(err instanceof CorruptRecordError)) throw err;
        live = false; // a record no worker could have written holds nothing
      }
      if (live && instance !== info.instance) {
        throw new TitanError(
          'Conflict',
          `node id ${info.id} is already registered by another live worker (instance ${String(instance ?? 'unknown')}); ` +
            'stop that worker (a stopped or dead one lets go within its --ttl), or give this one another --node-id',
        );
      }
      const { succeeded } = await this.txn([txnCompare.modRevision(key, held.mod_revision)], [put]);
      if (succeeded) return;
    }
    throw new TitanError('Conflict', `the registration of node ${info.id} kept changing under this worker; try again`);
  }
  getNode(nodeId: string): Promise<Versioned<NodeInfo> | undefined> {
    return this.get(this.keys.node(nodeId), records.node);
  }
  listNodes(): Promise<ReadResult & { items: Versioned<NodeInfo>[] }> {
    return this.list(this.keys.collection('nodes'), records.node);
  }
}
