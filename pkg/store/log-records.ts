import type { Assignment } from '../model/assignment.js';
import type { LogChunk } from '../model/logs.js';
import { records, encode } from './codec.js';
import { StoreCore, type ReadResult } from './store-core.js';
import { txnCompare, txnOp } from './txn.js';
import type { Versioned } from './versioned.js';

/** Jobs' output: chunks per attempt under the node that ran it. */
export abstract class LogRecords extends StoreCore {
  /** Appends chunks of a job's output in one transaction, fenced like every worker write. */
  async appendLogChunks(assignment: Versioned<Assignment>, chunks: readonly LogChunk[]): Promise<boolean> {
    const { nodeId, jobId, attempt } = assignment.value;
    const { succeeded } = await this.txn(
      [txnCompare.createRevision(assignment.key, assignment.createRevision)],
      chunks.map((chunk) => txnOp.put(this.keys.logChunk(nodeId, jobId, attempt, chunk.seq), encode(chunk))),
    );
    return succeeded;
  }
  /**
   * The newest readable chunk of one attempt (where a re-attached run resumes
   * its log), if any. Corrupt chunks after it are passed over: the run's next
   * chunks overwrite them.
   */
  async lastLogChunk(nodeId: string, jobId: string, attempt: number): Promise<LogChunk | undefined> {
    let last: LogChunk | undefined;
    await this.scan(this.keys.attemptLogs(nodeId, jobId, attempt), records.logChunk, (page) => {
      last = page[0]?.value;
      return last === undefined;
    }, { descending: true, pageSize: 4 });
    return last;
  }
  /** Chunks of one attempt with seq > afterSeq, in order; corrupt ones are left out and reported. */
  async readLogChunks(nodeId: string, jobId: string, attempt: number, afterSeq = -1): Promise<ReadResult & { chunks: LogChunk[] }> {
    const prefix = this.keys.attemptLogs(nodeId, jobId, attempt);
    const from = afterSeq >= 0 ? this.keys.logChunk(nodeId, jobId, attempt, afterSeq + 1) : undefined;
    // Chunks are up to ~64 KiB: small pages keep each reply far below gRPC's 4 MiB.
    const { items, ...result } = await this.list(prefix, records.logChunk, { fromKey: from, pageSize: 16 });
    return { ...result, chunks: items.map((i) => i.value) };
  }
}
