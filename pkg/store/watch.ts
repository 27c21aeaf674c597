import type { Watcher } from 'etcd3';

/**
 * Cancels a watcher without hanging: the client waits for etcd to confirm a
 * cancel, which never comes for a watch etcd itself cancelled (compaction).
 */
export function cancelWatcher(w: Watcher): Promise<void> {
  return Promise.race([w.cancel().catch(() => undefined), sleep(1000)]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
