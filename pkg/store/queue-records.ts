import type { ICompare } from 'etcd3';
import { TitanError, invalidInput } from '../model/errors.js';
import { isFinal } from '../model/job.js';
import { DEFAULT_QUEUE, childQueues, implicitDefaultQueue, queueOf, validateQueueTree, type Queue } from '../model/queue.js';
import { encode, records } from './codec.js';
import { MAX_CAS_RETRIES, StoreCore, type ReadResult } from './store-core.js';
import { prefixEnd, txnCompare, txnOp } from './txn.js';
import type { Versioned } from './versioned.js';

/** What one queue write does, and what must still hold for it (see Store.writeQueues). */
interface QueueWrite {
  put?: Queue;
  /** The put creates this queue: it must not exist. */
  absent?: string;
  /** The put replaces this stored version. */
  unchanged?: Versioned<Queue>;
  del?: Versioned<Queue>;
}

/** Compare that holds while a key exists (txnCompare.absent's opposite). */
export function queueExists(key: string): ICompare {
  return txnCompare.exists(key);
}

/** Queues: one tree, validated as a whole on every write. */
export abstract class QueueRecords extends StoreCore {
  getQueue(name: string): Promise<Versioned<Queue> | undefined> {
    return this.get(this.keys.queue(name), records.queue);
  }
  /** The stored queues, by name (the default queue is there only once someone updated it). */
  listQueues(): Promise<ReadResult & { items: Versioned<Queue>[] }> {
    return this.list(this.keys.collection('queues'), records.queue);
  }
  /** A queue that must exist; the default queue always does, stored or not. */
  async requireQueue(name: string): Promise<Queue> {
    const found = await this.getQueue(name);
    if (found) return found.value;
    if (name === DEFAULT_QUEUE) return implicitDefaultQueue();
    throw new TitanError('NotFound', `no queue "${name}" (see titan queue list)`);
  }
  /**
   * Creates a queue: Conflict if it exists, InvalidInput if the tree it
   * makes is not valid (validateQueueTree). Validated and written as one
   * optimistic step over the whole queue collection, so concurrent changes
   * cannot together break the tree (e.g. two children overrunning a quota).
   */
  async createQueue(queue: Queue): Promise<void> {
    if (queue.name === DEFAULT_QUEUE) {
      throw new TitanError('Conflict', `the default queue always exists; change it with titan queue update ${DEFAULT_QUEUE}`);
    }
    await this.writeQueues((queues) => {
      if (queues.some((q) => q.value.name === queue.name)) {
        throw new TitanError('Conflict', `queue "${queue.name}" already exists (change it with titan queue update ${queue.name})`);
      }
      return { put: queue, absent: queue.name };
    });
  }
  /**
   * Read-modify-write of one queue. The default queue is stored on its
   * first update (until then it exists implicitly). NotFound for a queue
   * that does not exist; InvalidInput if the change breaks the tree.
   */
  async updateQueue(name: string, change: (current: Queue) => Queue): Promise<Queue> {
    let next: Queue | undefined;
    await this.writeQueues((queues) => {
      const current = queues.find((q) => q.value.name === name);
      if (!current && name !== DEFAULT_QUEUE) throw new TitanError('NotFound', `no queue "${name}" (see titan queue list)`);
      next = { ...change(current?.value ?? implicitDefaultQueue()), name };
      return current ? { put: next, unchanged: current } : { put: next, absent: name };
    });
    return next as Queue;
  }
  /**
   * Deletes a queue. Refused (Conflict) while child queues name it as their
   * parent or jobs that have not ended are in it: those would be left without
   * a queue. A job submitted between that check and the delete is the one
   * race left; the scheduler treats a job whose queue is gone like one in a
   * queue with no quota (see docs/queues.md).
   */
  async deleteQueue(name: string): Promise<void> {
    if (name === DEFAULT_QUEUE) throw invalidInput('name', 'the default queue always exists; it cannot be deleted');
    let active = 0;
    await this.scan(this.keys.collection('jobs'), records.job, (page) => {
      for (const j of page) if (queueOf(j.value) === name && !isFinal(j.value.state)) active++;
    });
    await this.writeQueues((queues) => {
      const current = queues.find((q) => q.value.name === name);
      if (!current) throw new TitanError('NotFound', `no queue "${name}" (see titan queue list)`);
      const children = childQueues(queues.map((q) => q.value), name);
      if (children.length > 0) {
        throw new TitanError('Conflict', `queue "${name}" still has child queues (${children.map((c) => c.name).join(', ')}); delete or move them first`);
      }
      if (active > 0) {
        throw new TitanError('Conflict', `queue "${name}" still has ${active} job(s) that have not ended; cancel them or wait (titan list --status Pending,Scheduled,Running)`);
      }
      return { del: current };
    });
  }
  /**
   * One validated write to the queue collection: `plan` sees every stored
   * queue and says what to write; the tree after the write is validated, and
   * the transaction holds only if no queue was written since the read and
   * every queue the new one relies on (its parent) still exists unchanged.
   * A lost race re-reads and re-plans.
   */
  private async writeQueues(plan: (queues: readonly Versioned<Queue>[]) => QueueWrite): Promise<void> {
    const prefix = this.keys.collection('queues');
    for (let attempt = 0; attempt < MAX_CAS_RETRIES; attempt++) {
      const { items, revision } = await this.listQueues();
      const write = plan(items);
      const after = items.filter((q) => q.value.name !== write.put?.name && q.key !== write.del?.key).map((q) => q.value);
      if (write.put) after.push(write.put);
      validateQueueTree(after);
      const compare: ICompare[] = [
        // Range compare: no queue key was put since the read (deletions are covered by the compares below).
        { key: Buffer.from(prefix), range_end: prefixEnd(prefix), target: 'Mod', result: 'Less', mod_revision: String(BigInt(revision) + 1n) },
      ];
      const parent = write.put?.parent === undefined ? undefined : items.find((q) => q.value.name === write.put?.parent);
      if (parent) compare.push(txnCompare.modRevision(parent.key, parent.modRevision));
      if (write.absent !== undefined) compare.push(txnCompare.absent(this.keys.queue(write.absent)));
      if (write.unchanged) compare.push(txnCompare.modRevision(write.unchanged.key, write.unchanged.modRevision));
      if (write.del) compare.push(txnCompare.modRevision(write.del.key, write.del.modRevision));
      const success = write.put ? [txnOp.put(this.keys.queue(write.put.name), encode(write.put))] : [];
      if (write.del) success.push(txnOp.del(write.del.key));
      if ((await this.txn(compare, success)).succeeded) return;
    }
    throw new TitanError('Conflict', 'queues kept changing while this change was checked; try again');
  }
}
