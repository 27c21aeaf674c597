import { Counter, type Registry } from 'prom-client';

/**
 * `titan_<component>_watch_callback_failures_total`: the watch handlers of
 * this process that threw (each was logged with its key, and the informer
 * re-listed). Read from the informers when scraped; they only ever count up.
 */
export function watchFailuresCounter(component: 'master' | 'worker', registry: Registry, read: () => number): Counter {
  let reported = 0;
  return new Counter({
    name: `titan_${component}_watch_callback_failures_total`,
    help: `Watch handlers of this ${component} that threw: each was logged with its key (a WatchCallbackError) and survived, its cache re-listed. Any is a bug to report.`,
    registers: [registry],
    collect() {
      const now = read();
      if (now > reported) this.inc(now - reported);
      reported = Math.max(reported, now);
    },
  });
}
