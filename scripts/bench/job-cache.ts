import type { Job, JobState } from '../../pkg/model/index.js';
import { records, startInformer, type Informer, type Store } from '../../pkg/store/index.js';

/** Every job under the prefix, kept current by an informer (list, then watch). */
export class JobCache {
  readonly jobs = new Map<string, Job>();
  private informer: Informer | undefined;

  /** @param options.keepRemoved a removed job keeps its last value (a bench with retention on counts ended jobs it removes) */
  constructor(
    private readonly store: Store,
    private readonly options: { keepRemoved?: boolean } = {},
  ) {}

  start(): Promise<void> {
    const keys = this.store.keys;
    this.informer = startInformer<Job>(this.store, keys.collection('jobs'), {
      reset: (items) => {
        this.jobs.clear();
        for (const i of items) this.jobs.set(keys.idOf(i.key), i.value);
      },
      events: (events) => {
        for (const e of events) {
          if (e.type === 'put' && e.value) this.jobs.set(keys.idOf(e.key), e.value);
          else if (!this.options.keepRemoved) this.jobs.delete(keys.idOf(e.key));
        }
      },
    }, { decode: records.job.decode });
    return this.informer.ready;
  }

  count(ids: readonly string[], pass: (state: JobState) => boolean): number {
    let n = 0;
    for (const id of ids) {
      const job = this.jobs.get(id);
      if (job && pass(job.state)) n++;
    }
    return n;
  }

  async stop(): Promise<void> {
    await this.informer?.stop();
  }
}
