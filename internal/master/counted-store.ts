import type { ICompare, IRequestOp } from 'etcd3';
import { Store, type StoreOptions, type TxnResult } from '../../pkg/store/index.js';
import type { TxnResultLabel } from './metrics.js';

/**
 * The master's Store, counting how its compare-and-swap transactions end
 * (every guarded write of the master goes through Store.txn: placements,
 * reasons, folds, evictions, requeues, retention). A subclass here rather
 * than a hook in pkg/store, which knows nothing of metrics.
 */
export class CountedStore extends Store {
  constructor(
    options: StoreOptions,
    private readonly count: (result: TxnResultLabel) => void,
  ) {
    super(options);
  }

  override async txn(compare: ICompare[], success: IRequestOp[]): Promise<TxnResult> {
    let result: TxnResult;
    try {
      result = await super.txn(compare, success);
    } catch (err) {
      this.count('error');
      throw err;
    }
    this.count(result.succeeded ? 'committed' : 'conflict');
    return result;
  }
}
