import { WatchManager } from 'etcd3/lib/watch.js';

interface WatchResponse {
  watch_id: string;
}

interface ManagerInternals {
  watchers: { id: string | null }[];
  handleResponse(res: WatchResponse): void;
}

/**
 * etcd3 throws "Failed to find watcher for IWatchResponse" from its watch
 * stream's data handler when a response arrives for a watcher it has just
 * dropped (a watch cancelled by compaction, or by us, with events still in
 * flight). Thrown there, it is an uncaught exception that would kill the
 * process. Such a response belongs to no watcher any more: it is dropped.
 * This reaches into etcd3's internals (WatchManager's watchers and
 * handleResponse), so package.json pins etcd3 to the exact version it was
 * written against (1.1.2): an upgrade is a deliberate change that re-checks
 * this patch (test/unit/watch-guard.test.ts).
 */
export function guardWatchResponses(): void {
  const proto = WatchManager.prototype as unknown as ManagerInternals & { titanGuarded?: boolean };
  if (proto.titanGuarded) return;
  const original = proto.handleResponse;
  proto.handleResponse = function (this: ManagerInternals, res: WatchResponse): void {
    if (!this.watchers.some((w) => w.id === res.watch_id)) return;
    original.call(this, res);
  };
  proto.titanGuarded = true;
}
