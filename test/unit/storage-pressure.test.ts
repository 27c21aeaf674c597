import { describe, expect, it } from 'vitest';
import { pressurePolicy, selectExpired } from '../../internal/master/retention.js';
import { storageFullMessage } from '../../pkg/model/index.js';

describe('storage pressure', () => {
  it('keeps ended jobs for a quarter of --retain and --retain-jobs', () => {
    const policy = { retainMs: 24 * 3_600_000, retainJobs: 10_000 };
    expect(pressurePolicy(policy)).toEqual({ retainMs: 6 * 3_600_000, retainJobs: 2500 });
    const now = 100 * 3_600_000;
    const ended = [7, 5, 1].map((hoursAgo, i) => ({ id: `j${i}`, modRevision: '1', finishedAt: now - hoursAgo * 3_600_000, nodes: [] }));
    expect(selectExpired(ended, policy, now)).toEqual([]);
    expect(selectExpired(ended, pressurePolicy(policy), now).map((j) => j.id)).toEqual(['j0']);
  });

  it('says what is full, what still runs and what to do', () => {
    expect(storageFullMessage({ dbSize: 1.7 * 2 ** 30, quotaBytes: 2 * 2 ** 30, nospace: false })).toBe(
      "cluster storage full (etcd's database is 1740.8 MiB of its 2048 MiB quota): new jobs are refused, running jobs go on; " +
        "the master is removing ended jobs faster; try again later, or lower --retain, or raise etcd --quota-backend-bytes with the master's --etcd-quota-bytes",
    );
    expect(storageFullMessage(undefined)).toMatch(/^cluster storage full: new jobs are refused/);
    expect(storageFullMessage({ nospace: true })).toContain("etcdctl alarm disarm");
  });
});
