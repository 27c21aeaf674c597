import { WatchManager } from 'etcd3/lib/watch.js';
import { describe, expect, it } from 'vitest';
import { guardWatchResponses } from '../../pkg/store/watch-guard.js';

describe('etcd3 watch guard', () => {
  it('drops a response for a watcher that is gone instead of throwing from the stream handler', () => {
    guardWatchResponses();
    const handle = (WatchManager.prototype as unknown as { handleResponse(res: { watch_id: string }): void }).handleResponse;
    const manager = { watchers: [{ id: '1' }], initialBackoff: { next: () => undefined } };
    expect(() => handle.call(manager, { watch_id: '7' })).not.toThrow();
  });
});
