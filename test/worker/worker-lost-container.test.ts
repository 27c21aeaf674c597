import { describe, expect, it } from 'vitest';
import { CONTAINER_REMOVED_REASON } from '../../pkg/model/index.js';
import { TEST_IMAGE } from '../harness/docker.js';
import { dockerWorkerSuite, readLogs, runningContainer, startMaster, submitJob, waitFor, waitForState } from './helpers.js';

describe('worker: a container removed outside Titan', () => {
  const suite = dockerWorkerSuite('worker-lost');

  it('fails the attempt as lost-container and, with retries 1, runs attempt 2 to success', async () => {
    const { store, config } = await suite.start();
    suite.adopt(await startMaster(suite.etcd.endpoints, config.prefix));
    const { docker } = suite;
    const job = await submitJob(
      store,
      { image: TEST_IMAGE, cmd: 'if [ "$TITAN_ATTEMPT" = 1 ]; then echo first; sleep 60; fi; echo "done $TITAN_ATTEMPT"' },
      { retries: 1 },
    );
    const container = await runningContainer(docker, job.id, 1, 15_000);
    await waitFor('the first output', async () => ((await readLogs(store, job.id, 1)).stdout === 'first\n' ? true : undefined));

    // What `docker rm -f` does.
    await docker.getContainer(container.Id).remove({ force: true });
    const t0 = Date.now();
    const requeued = await waitFor('attempt 1 to be recorded', async () => {
      const current = (await store.getJob(job.id))?.value;
      return current?.history?.length ? current : undefined;
    });
    expect(requeued.history?.[0]).toMatchObject({ attempt: 1, state: 'Failed', failure: 'lost-container', reason: CONTAINER_REMOVED_REASON });
    console.log(`container removed outside Titan: recorded after ${Date.now() - t0} ms`);

    const done = await waitForState(store, job.id, ['Succeeded', 'Failed', 'Cancelled'], 20_000);
    expect(done).toMatchObject({ state: 'Succeeded', attempt: 2, exitCode: 0, failureCount: 1 });
    expect(done.history?.map((h) => [h.attempt, h.state, h.failure])).toEqual([
      [1, 'Failed', 'lost-container'],
      [2, 'Succeeded', undefined],
    ]);
    expect((await readLogs(store, job.id, 1)).stdout).toBe('first\n');
    expect((await readLogs(store, job.id, 2)).stdout).toBe('done 2\n');
  });
});
