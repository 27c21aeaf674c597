import { describe, expect, it } from 'vitest';
import { TEST_IMAGE } from '../harness/docker.js';
import { dockerWorkerSuite, readLogs, startMaster, submitJob, waitForState } from './helpers.js';

const KiB = 1024;

describe('worker: one log budget per job, across its attempts', () => {
  const suite = dockerWorkerSuite('worker-log-budget');

  it('a job that floods its log on every one of 4 attempts stores at most the budget in all', async () => {
    const budget = 100 * KiB;
    const tw = await suite.start({ maxLogBytes: 64 * KiB, jobLogBudgetBytes: budget });
    const { store } = tw;
    suite.adopt(await startMaster(suite.etcd.endpoints, tw.config.prefix));
    // 300 KB of output per attempt, then a failure: retried 3 times.
    const job = await submitJob(store, { image: TEST_IMAGE, cmd: 'yes 0123456789abcdef | head -c 300000; exit 1' }, { retries: 3 });
    const done = await waitForState(store, job.id, ['Succeeded', 'Failed', 'Cancelled'], 60_000);
    expect(done).toMatchObject({ state: 'Failed', attempt: 4 });

    const attempts = await Promise.all([1, 2, 3, 4].map((attempt) => readLogs(store, job.id, attempt)));
    const stored = attempts.map((logs) => logs.entries.reduce((sum, e) => sum + Buffer.byteLength(e.data), 0));
    const output = attempts.map((logs) => Buffer.byteLength(logs.stdout));
    // Attempt 1 has the per-attempt cap, attempt 2 what is left, the later ones nothing but the marker.
    expect(output[0]).toBe(64 * KiB);
    expect(output[0] + output[1]).toBeGreaterThan(budget - 200);
    expect(output[2] + output[3]).toBe(0);
    expect(stored[0] + stored[1]).toBeLessThanOrEqual(budget);
    // In all: the budget, and a one-line marker for each attempt that found nothing left.
    expect(stored.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(budget + 2 * 200);
    expect(attempts[0].stderr).toBe('[titan] log truncated: output exceeded 64KiB\n');
    for (const later of attempts.slice(1)) {
      expect(later.stderr).toBe("[titan] log truncated: the job's attempts together reached its log budget of 100KiB\n");
    }
    // Each attempt's record says what it stored: the next attempt's worker reads it there.
    expect(done.history?.map((h) => h.logBytes)).toEqual(stored);
  }, 90_000);
});
