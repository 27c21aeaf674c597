import { TitanError } from '../model/errors.js';
import type { ApiToken } from '../model/token.js';
import { encode, records } from './codec.js';
import { StoreCore, type ReadResult } from './store-core.js';
import { txnCompare, txnOp } from './txn.js';
import type { Versioned } from './versioned.js';

/** API tokens: their hashes, never their secrets. */
export abstract class TokenRecords extends StoreCore {
  /** Stores a new token (its hash, never the secret); Conflict if the id is taken. */
  async createToken(token: ApiToken): Promise<void> {
    const key = this.keys.token(token.id);
    const { succeeded } = await this.txn([txnCompare.absent(key)], [txnOp.put(key, encode(token))]);
    if (!succeeded) throw new TitanError('Conflict', `token ${token.id} already exists; create another`);
  }
  getToken(tokenId: string): Promise<Versioned<ApiToken> | undefined> {
    return this.get(this.keys.token(tokenId), records.token);
  }
  listTokens(): Promise<ReadResult & { items: Versioned<ApiToken>[] }> {
    return this.list(this.keys.collection('tokens'), records.token);
  }
  /** Deletes a token: the API refuses it from the moment its watch sees the delete. NotFound if absent. */
  async revokeToken(tokenId: string): Promise<void> {
    const res = await this.call(() => this.client.delete().key(this.keys.token(tokenId)).exec());
    if (res.deleted === '0') throw new TitanError('NotFound', `no token ${tokenId} (see titan token list)`);
  }
}
