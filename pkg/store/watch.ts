import type { Watcher } from 'etcd3';

/**
 * Waits for a cancel or stop, but not for long and never failing: an etcd3
 * watcher that etcd already cancelled, or a dead connection, may never
 * confirm, and callers must still go on (or exit).
 */
export function settleSoon(work: Promise<unknown>, ms = 1000): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    work.then(done, done);
  });
}

/**
 * Cancels a watcher without hanging: the client waits for etcd to confirm a
 * cancel, which never comes for a watch etcd itself cancelled (compaction).
 */
export function cancelWatcher(w: Watcher): Promise<void> {
  return settleSoon(w.cancel());
}
