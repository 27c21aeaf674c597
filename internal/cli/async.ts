/**
 * Waits for a cancel/stop, but not for long and never failing: an etcd3
 * watcher that etcd already cancelled, or a dead connection, may never
 * confirm, and the CLI must still exit.
 */
export function settleSoon(work: Promise<unknown>, ms = 1000): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    work.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}
