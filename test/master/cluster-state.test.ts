import { describe, expect, it } from 'vitest';
import { ClusterState } from '../../internal/master/cluster-state.js';
import { decodePendingJob, storedJob, type PendingJob } from '../../internal/master/pending-job.js';
import { placementWrite, planMasterPass, type Plan } from '../../internal/master/plan.js';
import { createPolicy, REASON_GRACE_MS, REASON_REFRESH_MS } from '../../internal/scheduler/index.js';
import { buildJobSpec, type Assignment, type Job, type NodeInfo } from '../../pkg/model/index.js';
import { decode, encode, type Versioned, type WatchEvent } from '../../pkg/store/index.js';

/** Pure tests of the master's snapshot: the compact pending queue, its order, and our own writes ahead of their watch events. */

let seq = 0;
function job(patch: Partial<Job> = {}): Job {
  seq++;
  return { ...buildJobSpec({ shell: 'true', cpu: '100m', memory: '64Mi' }), name: `j${seq}`, id: `job-${String(seq).padStart(10, '0')}`, state: 'Pending', createdAt: 1000 + seq, attempt: 0, ...patch };
}

const key = (id: string): string => `/t/jobs/${id}`;

function listed(j: Job, modRevision: number): Versioned<PendingJob | null> {
  return { key: key(j.id), value: decodePendingJob(encode(j)), modRevision: String(modRevision), createRevision: String(modRevision) };
}

function put(j: Job, modRevision: number): WatchEvent<PendingJob | null> {
  return { type: 'put', key: key(j.id), value: decodePendingJob(encode(j)), modRevision: String(modRevision), createRevision: '1' };
}

const ids = (state: ClusterState): string[] => state.queue().filter((j) => state.pending.get(j.id) === j).map((j) => j.id);

function node(id: string, cores: number): NodeInfo {
  return { id, hostname: id, capacity: { cpu: cores * 1000, memory: 64 * 2 ** 30, gpuMilli: 0 }, gpus: [], labels: {}, executors: ['docker', 'shell'], registeredAt: 0, version: 't' };
}

describe('pending jobs, compact', () => {
  it('decodes only what can be pending, and keeps the stored value exactly', () => {
    const running = encode(job({ state: 'Running', node: 'n1', attempt: 1 }));
    expect(decodePendingJob(running)).toBeNull();
    // No "Pending" in the bytes: not decoded, but bytes that cannot be a record at all are corrupt.
    expect(() => decodePendingJob(Buffer.from([0xc1, 0xc1, 0xc1]), '/t/jobs/x')).toThrow(/corrupt \(not a MessagePack map\)/);
    // "Pending" in a record of the wrong shape: corrupt, never a half-read job.
    expect(() => decodePendingJob(encode({ state: 'Pending' }), '/t/jobs/y')).toThrow(/\/t\/jobs\/y is corrupt/);
    // "Pending" in some other field: decoded, then rejected by its state.
    expect(decodePendingJob(encode(job({ state: 'Failed', name: 'Pending' })))).toBeNull();

    const j = job({ priority: 5, reason: 'waiting for capacity: needs 64 cores', retryAt: 99, nodeSelector: { zone: 'a' }, labels: { team: 'x' } });
    const p = decodePendingJob(encode(j));
    expect(p).toMatchObject({ id: j.id, kind: 'shell', resources: j.resources, priority: 5, createdAt: j.createdAt, attempt: 0, retryAt: 99, reason: j.reason, nodeSelector: { zone: 'a' } });
    expect(storedJob(p as PendingJob)).toEqual(j);
    // Jobs of one shape share their resources.
    expect(decodePendingJob(encode(job()))?.resources).toBe(decodePendingJob(encode(job()))?.resources);
  });

  it('keeps the queue in order as jobs come and go, without sorting it again', () => {
    const state = new ClusterState();
    const [a, b, c] = [job(), job(), job()];
    const urgent = job({ priority: 10 });
    state.resetJobs([listed(c, 3), listed(a, 1), listed(b, 2), { key: key('x'), value: null, modRevision: '4', createRevision: '4' }]);
    expect(ids(state)).toEqual([a.id, b.id, c.id]);

    const d = job();
    state.applyJobEvents([put(d, 5), put(urgent, 6), { type: 'delete', key: key(b.id), modRevision: '7', createRevision: '2' }]);
    expect(ids(state)).toEqual([urgent.id, a.id, c.id, d.id]);
    expect(state.pending.size).toBe(4);

    // Placed elsewhere, then back in the queue (a node was lost): once, in its place.
    state.applyJobEvents([put({ ...a, state: 'Scheduled', node: 'n1', attempt: 1 }, 8)]);
    expect(ids(state)).toEqual([urgent.id, c.id, d.id]);
    state.applyJobEvents([put({ ...a, attempt: 1 }, 9)]);
    expect(ids(state)).toEqual([urgent.id, a.id, c.id, d.id]);
    expect(state.queue().filter((j) => j.id === a.id && state.pending.get(j.id) === j)).toHaveLength(1);
  });

  it('applies its own writes ahead of their watch events, and the events after them change nothing', () => {
    const calls: string[] = [];
    const state = new ClusterState((j) => calls.push(j.id));
    const [a, b] = [job(), job()];
    state.resetJobs([listed(a, 10), listed(b, 11)]);
    expect(calls).toEqual([a.id, b.id]);

    // a placed at 20: gone from the queue at once; its Scheduled event later is a no-op.
    state.noteLocalJobWrite(a.id, 10, 20);
    expect(state.pending.has(a.id)).toBe(false);
    state.applyJobEvents([put({ ...a, state: 'Scheduled', node: 'n1', attempt: 1 }, 20)]);
    expect(state.pending.has(a.id)).toBe(false);

    // b gets a reason at 21: the queue holds the new revision, an event older than it is ignored.
    const withReason = decodePendingJob(encode({ ...b, reason: 'no node' })) as PendingJob;
    state.noteLocalJobWrite(b.id, 11, 21, withReason);
    expect(state.pending.get(b.id)).toMatchObject({ reason: 'no node', modRevision: 21 });
    state.applyJobEvents([put(b, 15)]);
    expect(state.pending.get(b.id)).toMatchObject({ reason: 'no node', modRevision: 21 });

    // The watch was first this time (b cancelled at 31 after our write at 30): the late note must not bring b back.
    state.applyJobEvents([put({ ...b, reason: 'later' }, 30), put({ ...b, state: 'Cancelled' }, 31)]);
    state.noteLocalJobWrite(b.id, 21, 30, decodePendingJob(encode({ ...b, reason: 'later' })) ?? undefined);
    expect(state.pending.has(b.id)).toBe(false);
    expect(calls).toEqual([a.id, b.id]);
  });
});

describe('planning and the placement write', () => {
  it('places in queue order and builds the Scheduled job from the stored value', () => {
    const state = new ClusterState();
    state.resetNodes([{ key: '/t/nodes/n1', value: node('n1', 1), modRevision: '1', createRevision: '7' }]);
    const first = job({ reason: 'waiting', retryAt: 1, env: { A: 'b' } });
    const second = job();
    const third = job();
    state.resetJobs([listed(third, 5), listed(second, 4), listed(first, 3)]);

    const plan = planMasterPass(state, createPolicy('binpack'), new Set([second.id]), 5000);
    expect(plan.placements.map((p) => p.job.id)).toEqual([first.id, third.id]);
    const write = placementWrite(plan.placements[0], key(first.id));
    expect(write.job).toMatchObject({ key: key(first.id), modRevision: '3' });
    expect(write.nodeCreateRevision).toBe('7');
    const { reason: _reason, retryAt: _retryAt, ...rest } = first;
    const expected: Job = { ...rest, state: 'Scheduled', node: 'n1', attempt: 1, gpuDevices: [], scheduledAt: 5000 };
    expect(write.scheduled).toEqual(expected);
    // Byte for byte what a copy would have stored (same keys, same order).
    expect(encode(write.scheduled).equals(encode(expected))).toBe(true);
    expect(write.assignment).toEqual({ jobId: first.id, nodeId: 'n1', attempt: 1, resources: first.resources, gpuDevices: [], assignedAt: 5000 });
    expect(state.allocationCount()).toBe(2);
  });
});

describe('pending reasons', () => {
  /** Stores the plan as the committer would: its placements, and its reasons stamped `at`, all at `revision`. */
  function commit(state: ClusterState, plan: Plan, at: number, revision: number): void {
    for (const p of plan.placements) state.noteLocalJobWrite(p.job.id, p.job.modRevision, revision);
    for (const u of plan.reasonUpdates) {
      const next: Job = { ...storedJob(u.job), reason: u.reason, reasonAt: at };
      state.noteLocalJobWrite(u.job.id, u.job.modRevision, revision, decodePendingJob(encode(next)) ?? undefined);
    }
  }

  it('rewrites a reason whose figures alone changed at most once per REASON_REFRESH_MS, one that says something else at once', () => {
    const state = new ClusterState();
    state.resetNodes([{ key: '/t/nodes/n1', value: node('n1', 2), modRevision: '1', createRevision: '1' }]);
    const jobs = Array.from({ length: 150 }, () => job({ resources: { cpu: 1000, memory: 2 ** 30, gpuMilli: 0 } }));
    state.resetJobs(jobs.map((j, i) => listed(j, 10 + i)));
    const policy = createPolicy('binpack');

    const first = planMasterPass(state, policy, new Set(), 1_000);
    expect(first.placements).toHaveLength(2);
    expect(first.reasonUpdates).toHaveLength(148);
    commit(state, first, 1_000, 500);

    // One job ends: the next one is placed, and every position in the queue moves up.
    state.dropAllocation(first.placements[0].job.id);
    const second = planMasterPass(state, policy, new Set(), 2_000);
    expect(second.placements).toHaveLength(1);
    // Only what says something new is written: the new head of the queue now has the node reserved.
    // The others' positions wait, the one that moved from "#100+" to "#100" too (a capped position is a figure).
    expect(second.reasonUpdates.map((u) => u.reason)).toEqual([expect.stringMatching(/; first in line: node n1 is reserved for it/)]);
    // The held-back figures are due when the first reasons are REASON_REFRESH_MS old: a pass then, even if nothing else happens.
    expect(second.nextPassAt).toBe(1_000 + REASON_REFRESH_MS);
    commit(state, second, 2_000, 501);

    // Once the refresh interval has passed, the figures are brought up to date.
    state.dropAllocation(first.placements[1].job.id);
    const third = planMasterPass(state, policy, new Set(), 1_000 + REASON_REFRESH_MS);
    commit(state, third, 1_000 + REASON_REFRESH_MS, 502);
    expect(third.reasonUpdates.length).toBeGreaterThan(90);
    expect(third.reasonUpdates.map((u) => u.reason)).toContainEqual(expect.stringMatching(/; #2 in queue default$/));

    // A different reason is written at once: the node is gone.
    state.resetNodes([]);
    const fourth = planMasterPass(state, policy, new Set(), 1_000 + REASON_REFRESH_MS + 1);
    expect(fourth.reasonUpdates).toHaveLength(fourth.stillPending);
    for (const u of fourth.reasonUpdates) expect(u.reason).toBe('waiting for a node: no worker is registered');
  });

  it('gives a job waiting for capacity its first reason once it has waited REASON_GRACE_MS; one that can never run at once', () => {
    const state = new ClusterState();
    state.resetNodes([{ key: '/t/nodes/n1', value: node('n1', 1), modRevision: '1', createRevision: '1' }]);
    const at = 50_000;
    const core = { cpu: 1000, memory: 2 ** 20, gpuMilli: 0 };
    const waiting = [job({ createdAt: at, resources: core }), job({ createdAt: at, resources: core }), job({ createdAt: at, resources: core })];
    const huge = job({ createdAt: at, resources: { ...core, cpu: 8000 } });
    // A submitter whose clock runs ahead of the master's: no grace, rather than a reason held back for as long.
    const ahead = job({ createdAt: at + 3_600_000, resources: core });
    state.resetJobs([...waiting, huge, ahead].map((j, i) => listed(j, 10 + i)));
    const policy = createPolicy('binpack');

    const first = planMasterPass(state, policy, new Set(), at + 10);
    expect(first.placements.map((p) => p.job.id)).toEqual([waiting[0].id]);
    const reasons = new Map(first.reasonUpdates.map((u) => [u.job.id, u.reason]));
    expect([...reasons.keys()].sort()).toEqual([huge.id, ahead.id].sort());
    expect(reasons.get(huge.id)).toMatch(/^no registered node can ever run it/);
    expect(reasons.get(ahead.id)).toMatch(/^waiting for capacity/);
    expect(first.nextPassAt).toBe(at + REASON_GRACE_MS);
    commit(state, first, at + 10, 100);

    const second = planMasterPass(state, policy, new Set(), at + REASON_GRACE_MS);
    expect(second.reasonUpdates.map((u) => u.job.id).sort()).toEqual([waiting[1].id, waiting[2].id].sort());
    for (const u of second.reasonUpdates) expect(u.reason).toMatch(/^waiting for capacity/);
  });
});

describe('assignments carrying their job', () => {
  it('records the allocation of an assignment that carries its placed job (and of one without)', () => {
    const placed = job({ state: 'Scheduled', node: 'n1', attempt: 1, queue: 'team-a', env: { SECRET: 'x'.repeat(100) } });
    const base: Assignment = { jobId: placed.id, nodeId: 'n1', attempt: 1, resources: placed.resources, gpuDevices: [], assignedAt: 7, queue: 'team-a', priority: 3 };
    const state = new ClusterState();
    state.resetNodes([{ key: '/t/nodes/n1', value: node('n1', 4), modRevision: '1', createRevision: '1' }]);
    const carried = decode<Assignment>(encode({ ...base, job: encode(placed) }));
    expect(decode(carried.job ?? new Uint8Array())).toEqual(placed);
    state.resetAssignments([{ key: `/t/assign/n1/${placed.id}`, value: carried, modRevision: '5', createRevision: '5' }]);
    expect(state.allocationCount()).toBe(1);
    expect(state.allocatedByQueue().get('team-a')).toMatchObject({ cpu: placed.resources.cpu });
  });
});
