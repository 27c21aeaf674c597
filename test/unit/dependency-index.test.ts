import { describe, expect, it } from 'vitest';
import { ClusterState } from '../../internal/master/cluster-state.js';
import { DependencyIndex } from '../../internal/master/dependency-index.js';
import { decodeJobEntry, type JobEntry } from '../../internal/master/pending-job.js';
import { planMasterPass } from '../../internal/master/plan.js';
import { createPolicy, planPass, type PassJob } from '../../internal/scheduler/index.js';
import { ReplaySnapshot } from '../../internal/simulate/replay-snapshot.js';
import { nodeViewsOf, parseTraceJobs, passJobOf } from '../../internal/simulate/trace.js';
import { arrayParentState, arrayTaskId, buildJobSpec, parseAfter, type Job, type NodeInfo, type Queue } from '../../pkg/model/index.js';
import { encode, type WatchEvent } from '../../pkg/store/index.js';

/** The master's index of dependencies (pure), and the scheduling pass over a snapshot holding dependents. */

describe('DependencyIndex', () => {
  it('keeps a dependent waiting until its parents end, then releases, narrows or dooms it', () => {
    const index = new DependencyIndex();
    expect(index.add('c', parseAfter(['ok:a', 'any:b']))).toEqual({ kind: 'waiting', reason: 'Dependency: waits for ok:a any:b' });
    expect([...index.reasonsDue]).toEqual(['c']); // the master checks the stored reason says so
    expect(index.isParent('a') && index.isParent('b')).toBe(true);
    expect(index.takeUnread(10).sort()).toEqual(['a', 'b']);
    expect(index.hasUnread()).toBe(false);

    expect(index.observe('b', 'Running', 5)).toEqual({ released: [], doomed: 0, narrowed: 0 });
    expect(index.observe('b', 'Failed', 7)).toEqual({ released: [], doomed: 0, narrowed: 1 });
    expect(index.reasonOf('c')).toBe('Dependency: waits for ok:a');
    // An older sighting (a read that raced the watch) changes nothing.
    expect(index.observe('b', 'Running', 6)).toEqual({ released: [], doomed: 0, narrowed: 0 });
    expect(index.observe('a', 'Succeeded', 9)).toEqual({ released: ['c'], doomed: 0, narrowed: 0 });
    expect(index.reasonOf('c')).toBeUndefined();

    index.add('d', parseAfter('ok:a'));
    expect(index.verdictOf('d')).toEqual({ kind: 'satisfied' }); // a parent already seen ended: resolved at arrival
    index.add('e', parseAfter('notok:a'));
    expect([...index.doomed]).toEqual(['e']);
    expect(index.reasonOf('e')).toBe('DependencyNeverSatisfied: notok:a, but job a Succeeded');
  });

  it('forgets dependents that leave the queue and parents nobody waits for; a failed read is read again', () => {
    const index = new DependencyIndex();
    index.add('c1', parseAfter('ok:p'));
    index.add('c2', parseAfter('ok:p,q'));
    const taken = index.takeUnread(10);
    index.unreadAgain(taken);
    expect(index.takeUnread(1)).toHaveLength(1);
    index.remove('c2');
    expect(index.isParent('q')).toBe(false);
    expect(index.isParent('p')).toBe(true);
    index.remove('c1');
    expect(index.hasParents()).toBe(false);
    expect(index.size).toBe(0);
  });

  it('a parent that was never pending nor seen is gone: any is met, ok and notok can never be', () => {
    const index = new DependencyIndex();
    index.add('x', parseAfter('any:p'));
    index.add('y', parseAfter('ok:p'));
    expect(index.observe('p', 'gone', 3)).toEqual({ released: ['x'], doomed: 1, narrowed: 0 });
    expect([...index.doomed]).toEqual(['y']);
  });

  it('an array named as a parent is one job that ends with its last task: its tasks fold into its state', () => {
    expect(arrayParentState(3, { Succeeded: 2, Running: 1 })).toBe('Running');
    expect(arrayParentState(3, { Succeeded: 2, Failed: 1 })).toBe('Failed');
    expect(arrayParentState(3, { Failed: 1, Cancelled: 1, Pending: 1 })).toBe('Running');
    expect(arrayParentState(3, { Succeeded: 2, Cancelled: 1 })).toBe('Cancelled');
    expect(arrayParentState(3, { Succeeded: 3 })).toBe('Succeeded');
    expect(arrayParentState(3, { Succeeded: 2 })).toBe('gone'); // a task removed before the read: its end is unknown
    expect(arrayParentState(3, { Succeeded: 2, gone: 1 })).toBe('gone');

    const arr = '0000000000arr';
    const task = (i: number): string => arrayTaskId(arr, i);
    const index = new DependencyIndex();
    index.add('ok', parseAfter(`ok:${arr}`));
    index.add('notok', parseAfter(`notok:${arr}`));
    index.add('any', parseAfter(`any:${arr}`));
    expect(index.isParent(arr) && index.isParent(task(2))).toBe(true);
    expect(index.isParent(arrayTaskId('0000000000zzz', 2))).toBe(false);
    expect(index.takeUnread(10)).toEqual([arr]);
    // Task events before the array was read are kept, not judged: the array may hold tasks not yet seen.
    expect(index.observe(task(0), 'Succeeded', 10)).toEqual({ released: [], doomed: 0, narrowed: 0 });
    expect(index.observe(task(1), 'Failed', 11)).toEqual({ released: [], doomed: 0, narrowed: 0 });
    expect(index.reasonOf('any')).toBe(`Dependency: waits for any:${arr}`);
    // The read: task 0 at an older revision than its event (kept), task 2 still running.
    const read = { count: 3, revision: 12, tasks: [{ id: task(0), state: 'Running' as const, revision: 9 }, { id: task(1), state: 'Failed' as const, revision: 11 }, { id: task(2), state: 'Running' as const, revision: 8 }] };
    expect(index.observeArray(arr, read)).toEqual({ released: [], doomed: 0, narrowed: 0 });
    expect(index.hasUnread()).toBe(false);
    // The last task ends: the array Failed, so ok can never hold, notok and any do.
    expect(index.observe(task(2), 'Succeeded', 13)).toEqual({ released: ['notok', 'any'], doomed: 1, narrowed: 0 });
    expect(index.verdictOf('ok')).toEqual({ kind: 'never', reason: `DependencyNeverSatisfied: ok:${arr}, but job ${arr} Failed` });
    // An older event for a task changes nothing.
    expect(index.observe(task(1), 'Running', 5)).toEqual({ released: [], doomed: 0, narrowed: 0 });
  });

  it('a task waited for itself (ID[7]) and as one of its array\'s counts for both', () => {
    const arr = '0000000000arr';
    const index = new DependencyIndex();
    index.add('one', parseAfter(`ok:${arr}[0]`));
    index.add('all', parseAfter(`ok:${arr}`));
    index.observeArray(arr, { count: 1, revision: 5, tasks: [{ id: arrayTaskId(arr, 0), state: 'Running', revision: 4 }] });
    expect([...index.observe(arrayTaskId(arr, 0), 'Succeeded', 6).released].sort()).toEqual(['all', 'one']);
  });

  it('an array read with a task missing, or a task removed since, counts as gone', () => {
    const arr = '0000000000arr';
    const index = new DependencyIndex();
    index.add('ok', parseAfter(`ok:${arr}`));
    index.add('any', parseAfter(`any:${arr}`));
    index.observe(arrayTaskId(arr, 1), 'Running', 4);
    // Task 1 was seen running, then removed (its delete not seen yet); task 0 succeeded.
    const read = { count: 2, revision: 20, tasks: [{ id: arrayTaskId(arr, 0), state: 'Succeeded' as const, revision: 15 }] };
    expect(index.observeArray(arr, read)).toEqual({ released: ['any'], doomed: 1, narrowed: 0 });
  });

  it('with 100,000 waiting jobs, an ended job costs only its own dependents', () => {
    const index = new DependencyIndex();
    for (let i = 0; i < 100_000; i++) index.add(`w${i}`, [{ condition: 'ok', jobs: [`p${i % 50_000}`] }]);
    for (let i = 0; i < 7; i++) index.add(`hot${i}`, parseAfter('ok:hot'));
    expect(index.size).toBe(100_007);
    const before = index.evaluations;
    const started = performance.now();
    const changes = index.observe('hot', 'Succeeded', 10);
    const ms = performance.now() - started;
    expect(changes.released).toHaveLength(7);
    expect(index.evaluations - before).toBe(7);
    // Two dependents per p-parent: a failure looks at those two only.
    expect(index.observe('p42', 'Failed', 11)).toEqual({ released: [], doomed: 2, narrowed: 0 });
    expect(index.evaluations - before).toBe(9);
    expect(ms).toBeLessThan(50);
  });
});

describe('planPass over a snapshot that says which jobs wait', () => {
  /** The simulator's snapshot, with jobs named in `waiting` blocked. */
  class WaitingSnapshot<J extends PassJob> extends ReplaySnapshot<J> {
    readonly waiting = new Map<string, string>();
    blockedReason(job: J): string | undefined {
      return this.waiting.get(job.id);
    }
  }
  const [task] = parseTraceJobs('name,cpu_milli,memory_mib,num_gpu,gpu_milli\nt,1000,1024,0,0\n');
  const queues: Queue[] = [{ name: 'team', quota: { cpu: 1000, memory: 2 ** 30, gpuMilli: 0 }, weight: 1, createdAt: 0 }];

  it.each([
    ['the default queue (the kept order)', undefined],
    ['queues (the fair-share order)', 'team'],
  ])('never places a waiting job, though it fits, in %s', (_what, queue) => {
    const snapshot = new WaitingSnapshot(nodeViewsOf([{ id: 'n1', cpu: 8000, memory: 2 ** 34, gpus: 0, model: '' }]));
    const [first, blocked, last] = [0, 1, 2].map((i) => ({ ...passJobOf(task, i, queue), id: `j${i}` }));
    for (const j of [first, blocked, last]) snapshot.enqueue(j);
    snapshot.waiting.set(blocked.id, 'Dependency: waits for ok:x');
    const plan = planPass(snapshot, createPolicy('binpack'), { now: 0, queues: queue ? queues : [] });
    expect(plan.placements.map((p) => p.job.id)).toEqual([first.id, last.id]);
    // In the kept order it is offered and says why it waits; the fair-share order leaves it out (the master writes such reasons).
    expect(plan.reasonUpdates.map((u) => [u.job.id, u.reason])).toEqual(queue ? [] : [[blocked.id, 'Dependency: waits for ok:x']]);
    expect(plan.unplaced).toEqual([]);
  });
});

describe('the scheduling pass with dependents', () => {
  let seq = 0;
  const key = (id: string): string => `/t/jobs/${id}`;
  function job(patch: Partial<Job> = {}): Job {
    seq++;
    return { ...buildJobSpec({ shell: 'true', cpu: '1' }), id: `job-${String(seq).padStart(9, '0')}`, state: 'Pending', createdAt: 1000 + seq, attempt: 0, ...patch };
  }
  const node: NodeInfo = { id: 'n1', hostname: 'n1', capacity: { cpu: 8000, memory: 2 ** 34, gpuMilli: 0 }, gpus: [], labels: {}, executors: ['shell'], registeredAt: 0, version: 't' };

  function setup(): { state: ClusterState; event: (j: Job, revision: number) => WatchEvent<JobEntry> } {
    const state = new ClusterState();
    state.resetNodes([{ key: '/t/nodes/n1', value: node, modRevision: '1', createRevision: '1' }]);
    const isParentKey = (k: string): boolean => state.dependencies.isParent(k.slice(k.lastIndexOf('/') + 1));
    const event = (j: Job, revision: number): WatchEvent<JobEntry> => ({
      type: 'put',
      key: key(j.id),
      value: decodeJobEntry(encode(j), key(j.id), String(revision), isParentKey),
      modRevision: String(revision),
      createRevision: '1',
    });
    return { state, event };
  }
  const placed = (state: ClusterState): string[] => planMasterPass(state, createPolicy('binpack'), new Set(), 5000).placements.map((p) => p.job.id);

  it('never places a job whose dependencies are open, though it fits; places it once they are met', () => {
    const { state, event } = setup();
    const parent = job({ state: 'Running', node: 'n1', attempt: 1 });
    const child = job({ after: parseAfter(`ok:${parent.id}`), reason: `Dependency: waits for ok:${parent.id}` });
    const free = job();
    state.applyJobEvents([event(child, 2), event(free, 3)]);
    expect(state.dependencies.takeUnread(10)).toEqual([parent.id]); // the master reads it (Store.getJobStates)
    expect(state.observeParents([{ id: parent.id, state: 'Running', revision: '2' }]).newPending).toBe(false);

    const plan = planMasterPass(state, createPolicy('binpack'), new Set(), 5000);
    expect(plan.placements.map((p) => p.job.id)).toEqual([free.id]);
    expect(plan.reasonUpdates).toEqual([]); // it says what it waits for since its submit

    // The parent's own events are decoded now (its key is a parent's), and its end releases the child.
    expect(state.applyJobEvents([event({ ...parent, state: 'Succeeded', finishedAt: 9 }, 4)]).newPending).toBe(true);
    expect(placed(state)).toContain(child.id);
  });

  it('does not place a dependent whose condition can never hold, and does place a job requeued after it ran', () => {
    const { state, event } = setup();
    const parent = job({ state: 'Running', node: 'n1', attempt: 1 });
    const doomed = job({ after: parseAfter(`ok:${parent.id}`) });
    const rerun = job({ after: parseAfter(`ok:${parent.id}`), attempt: 1 }); // its conditions held once: a retry runs at once
    state.applyJobEvents([event(doomed, 2), event(rerun, 3), event(parent, 4)]);
    state.applyJobEvents([event({ ...parent, state: 'Failed', finishedAt: 9 }, 5)]);
    expect([...state.dependencies.doomed]).toEqual([doomed.id]);
    const plan = planMasterPass(state, createPolicy('binpack'), new Set(), 5000);
    expect(plan.placements.map((p) => p.job.id)).toEqual([rerun.id]);
    expect(plan.reasonUpdates).toEqual([]); // the leader cancels it (DependencyNeverSatisfied) instead
  });

  it('a job waiting for several says, once some ended, what it still waits for', () => {
    const { state, event } = setup();
    const [a, b] = [job({ state: 'Running', node: 'n1', attempt: 1 }), job({ state: 'Running', node: 'n1', attempt: 1 })];
    const child = job({ after: parseAfter(`ok:${a.id},${b.id}`), reason: `Dependency: waits for ok:${a.id},${b.id}` });
    state.applyJobEvents([event(child, 2), event(a, 3), event(b, 4)]);
    state.applyJobEvents([event({ ...a, state: 'Succeeded', finishedAt: 9 }, 5)]);
    const plan = planMasterPass(state, createPolicy('binpack'), new Set(), 5000);
    expect(plan.placements).toEqual([]);
    expect(plan.reasonUpdates.map((u) => [u.job.id, u.reason])).toEqual([[child.id, `Dependency: waits for ok:${b.id}`]]);
    expect(planMasterPass(state, createPolicy('binpack'), new Set(), 5000).reasonUpdates).toEqual([]); // written once
  });

  it('a job back from titan retry says again what it waits for', () => {
    const { state, event } = setup();
    const parent = job({ state: 'Running', node: 'n1', attempt: 1 });
    const child = job({ after: parseAfter(`ok:${parent.id}`), reason: 'resubmitted after Cancelled (titan retry)', history: [] });
    state.applyJobEvents([event(parent, 2), event(child, 3)]);
    const plan = planMasterPass(state, createPolicy('binpack'), new Set(), 5000);
    expect(plan.reasonUpdates.map((u) => [u.job.id, u.reason])).toEqual([[child.id, `Dependency: waits for ok:${parent.id}`]]);
    expect(plan.truncated).toBe(false);
  });

  it('with 100,000 jobs waiting, a pass does not walk through them', () => {
    const { state, event } = setup();
    const parent = job({ state: 'Running', node: 'n1', attempt: 1 });
    const after = parseAfter(`ok:${parent.id}`);
    state.applyJobEvents([event(parent, 1), ...Array.from({ length: 100_000 }, (_, i) => event(job({ after, reason: `Dependency: waits for ok:${parent.id}` }), 2 + i))]);
    expect(state.pending.size).toBe(100_000);
    expect(state.queue()).toHaveLength(0);
    // Their reasons are right since their submit: one pass takes them all off the list of reasons to check.
    const plan = planMasterPass(state, createPolicy('binpack'), new Set(), 5000);
    expect(plan).toMatchObject({ placements: [], reasonUpdates: [], truncated: false });
    state.applyJobEvents([event({ ...parent, state: 'Succeeded', finishedAt: 9 }, 200_000)]);
    expect(state.queue()).toHaveLength(100_000);
    expect(placed(state)).toHaveLength(8); // 8 one-core jobs fill the node
  });

  it('a gang waiting for a job is not placed until it may be, then as a whole', () => {
    const { state, event } = setup();
    const parent = job({ state: 'Running', node: 'n1', attempt: 1 });
    const after = parseAfter(`any:${parent.id}`);
    const replicas = [0, 1].map((rank) => job({ after, gang: { id: 'g', rank, size: 2, minAvailable: 2 } }));
    state.applyJobEvents([...replicas.map((r, i) => event(r, 2 + i)), event(parent, 5)]);
    expect(placed(state)).toEqual([]);
    state.applyJobEvents([event({ ...parent, state: 'Cancelled', finishedAt: 9 }, 6)]);
    expect(placed(state).sort()).toEqual(replicas.map((r) => r.id));
  });
});
