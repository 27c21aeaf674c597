import { describe, expect, it } from 'vitest';
import { AllocationBook, createPolicy, pendingReasonKind, planPass, placedAllocationMeta, type PassJob } from '../../internal/scheduler/index.js';
import { ReplaySnapshot } from '../../internal/simulate/replay-snapshot.js';
import { nodeViewsOf } from '../../internal/simulate/trace.js';
import {
  arrayIdOfTaskId,
  arrayIndexes,
  arrayTaskId,
  formatArrayRange,
  formatIndexes,
  JOB_ID_PATTERN,
  jobRefOf,
  MAX_ARRAY_INDEX,
  MAX_ARRAY_TASKS,
  newJobId,
  parseArrayOptions,
  parseArrayRange,
  parseJobRef,
} from '../../pkg/model/index.js';
import { Keys } from '../../pkg/store/keys.js';
import { refusal } from '../harness/refusal.js';


const invalid = (run: () => unknown): string => refusal(run).message;

describe('--array ranges', () => {
  it('parses first-last[:step][%max]', () => {
    expect(parseArrayRange('0-99')).toEqual({ first: 0, last: 99, step: 1, count: 100 });
    expect(parseArrayRange('0-99:10')).toEqual({ first: 0, last: 99, step: 10, count: 10 });
    expect(parseArrayRange('1-10:3%2')).toEqual({ first: 1, last: 10, step: 3, count: 4, max: 2 });
    expect(parseArrayRange(' 5-5 ')).toEqual({ first: 5, last: 5, step: 1, count: 1 });
    expect(arrayIndexes(parseArrayRange('1-10:3'))).toEqual([1, 4, 7, 10]);
    expect(arrayIndexes(parseArrayRange('0-10:4'))).toEqual([0, 4, 8]);
    expect(formatArrayRange(parseArrayRange('0-99:2%10'))).toBe('0-99:2%10');
    expect(formatArrayRange(parseArrayRange('3-7'))).toBe('3-7');
  });

  it('refuses bad ranges with a message naming the fault', () => {
    expect(invalid(() => parseArrayRange('5-2'))).toMatch(/array: "5-2" runs backwards/);
    expect(invalid(() => parseArrayRange('0-99%0'))).toMatch(/%0 would never run a task/);
    expect(invalid(() => parseArrayRange('0-99:0'))).toMatch(/the step must be 1 or more/);
    expect(invalid(() => parseArrayRange(`0-${MAX_ARRAY_INDEX + 1}`))).toMatch(/indexes run from 0 to 999999/);
    expect(invalid(() => parseArrayRange(`0-${MAX_ARRAY_TASKS}`))).toMatch(/holds 100001 tasks; an array holds at most 100000/);
    for (const bad of ['', '7', '-1-5', '0..9', '0-9:', '0-9%', 'a-b', '0-9%x', '0-9 %2']) {
      expect(invalid(() => parseArrayRange(bad))).toMatch(/is not an index range/);
    }
    expect(parseArrayRange(`0-${MAX_ARRAY_TASKS - 1}`).count).toBe(MAX_ARRAY_TASKS);
  });

  it('does not go with --replicas', () => {
    expect(invalid(() => parseArrayOptions({ array: '0-3', replicas: 2 }))).toMatch(/--array and --replicas do not go together/);
    expect(parseArrayOptions({})).toBeUndefined();
  });
});

describe('task ids and references', () => {
  const arrayId = newJobId();

  it('a task id is the array id and a six-digit index: a valid job id, etcd key and container name, sorting by index', () => {
    const ids = [0, 7, 10, 99, 100, MAX_ARRAY_INDEX].map((i) => arrayTaskId(arrayId, i));
    expect(ids[1]).toBe(`${arrayId}-000007`);
    for (const id of ids) {
      expect(id).toMatch(JOB_ID_PATTERN);
      expect(`titan-${id}-1`).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/); // Docker's container name rule
      expect(arrayIdOfTaskId(id)).toBe(arrayId);
    }
    expect([...ids].sort()).toEqual(ids);
    expect(new Keys('/t').job(ids[1]).startsWith(new Keys('/t').arrayTasks(arrayId))).toBe(true);
    expect(new Keys('/t').job(arrayId).startsWith(new Keys('/t').arrayTasks(arrayId))).toBe(false);
    expect(arrayIdOfTaskId(arrayId)).toBeUndefined();
    expect(arrayIdOfTaskId(`${arrayId}-00000x`)).toBeUndefined();
  });

  it('parseJobRef: ID is itself, ID[7] the task; malformed brackets are bad input', () => {
    expect(parseJobRef(arrayId)).toEqual({ id: arrayId });
    expect(parseJobRef('some-old-id')).toEqual({ id: 'some-old-id' });
    expect(parseJobRef(`${arrayId}[7]`)).toEqual({ id: `${arrayId}-000007`, task: { arrayId, index: 7 } });
    expect(parseJobRef(` ${arrayId}[0] `).id).toBe(`${arrayId}-000000`);
    for (const bad of [`${arrayId}[x]`, `${arrayId}[-1]`, `${arrayId}[]`, `${arrayId}[1]x`, `nope[1]`, `${arrayId}-000001[2]`, `${arrayId}]`]) {
      expect(invalid(() => parseJobRef(bad))).toMatch(/is not a job id or an array task/);
    }
    expect(invalid(() => parseJobRef(`${arrayId}[1000000]`))).toMatch(/indexes run from 0 to 999999/);
    expect(jobRefOf({ id: arrayTaskId(arrayId, 7), array: { id: arrayId, index: 7 } })).toBe(`${arrayId}[7]`);
    expect(jobRefOf({ id: arrayId })).toBe(arrayId);
  });

  it('formatIndexes: runs as ranges in --array syntax', () => {
    expect(formatIndexes([])).toBe('');
    expect(formatIndexes([3])).toBe('3');
    expect(formatIndexes([0, 1, 2, 3, 4, 7, 10, 12, 14, 16])).toBe('0-4,7,10-16:2');
    expect(formatIndexes([9, 1, 2])).toBe('1,2,9');
  });
});

describe('%max in the scheduling pass', () => {
  const nodes = nodeViewsOf([{ id: 'n1', cpu: 64_000, memory: 2 ** 40, gpus: 0, model: '' }]);

  function task(arrayId: string, index: number, max?: number): PassJob {
    return {
      id: arrayTaskId(arrayId, index),
      kind: 'docker',
      resources: { cpu: 100, memory: 2 ** 20, gpuMilli: 0 },
      priority: 0,
      createdAt: 0,
      attempt: 0,
      retryAt: undefined,
      reason: undefined,
      reasonAt: undefined,
      array: { id: arrayId, ...(max !== undefined ? { max } : {}) },
    };
  }

  it('places at most max tasks of an array, counting those already placed or running; the rest stay pending with ArrayLimit', () => {
    const capped = newJobId();
    const free = newJobId();
    const snapshot = new ReplaySnapshot(nodes);
    for (let i = 0; i < 10; i++) snapshot.enqueue(task(capped, i, 3));
    for (let i = 0; i < 5; i++) snapshot.enqueue(task(free, i));
    // One task of the capped array already runs: two more may start.
    const running = task(capped, 99, 3);
    snapshot.allocations.add(running.id, 'n1', running.resources, [], placedAllocationMeta(running, 0));

    const plan = planPass(snapshot, createPolicy('binpack'), { now: 1, queues: [] });
    const placed = plan.placements.map((p) => p.job.id);
    expect(placed.filter((id) => id.startsWith(capped))).toEqual([0, 1].map((i) => arrayTaskId(capped, i)));
    expect(placed.filter((id) => id.startsWith(free))).toHaveLength(5);
    expect(snapshot.arrayAllocations(capped)).toBe(3);
    expect(plan.stillPending).toBe(8);
    const held = plan.reasonUpdates.filter((r) => r.job.id.startsWith(capped));
    expect(held.map((r) => r.job.id)).toEqual([2, 3, 4, 5, 6, 7, 8, 9].map((i) => arrayTaskId(capped, i)));
    expect(held[0].reason).toMatch(/^ArrayLimit: at most 3 tasks of array /);
    expect(pendingReasonKind(held[0].reason)).toBe('array-limit');
    // Held-back tasks are not preemption candidates: they wait for a sibling, not for capacity.
    expect(plan.unplaced).toEqual([]);

    // A task ends: one more may start.
    for (const id of placed) snapshot.dequeue(id);
    snapshot.allocations.remove(running.id);
    const next = planPass(snapshot, createPolicy('binpack'), { now: 2, queues: [] });
    expect(next.placements.map((p) => p.job.id)).toEqual([arrayTaskId(capped, 2)]);
  });

  it('the allocation book counts a task by its id alone, and forgets an array with no task left', () => {
    const arrayId = newJobId();
    const book = new AllocationBook(() => undefined);
    const meta = placedAllocationMeta({ priority: 0, attempt: 0 }, 0);
    book.add(arrayTaskId(arrayId, 1), 'n1', { cpu: 1, memory: 1, gpuMilli: 0 }, [], meta);
    book.add(arrayTaskId(arrayId, 2), 'n1', { cpu: 1, memory: 1, gpuMilli: 0 }, [], meta);
    book.add(newJobId(), 'n1', { cpu: 1, memory: 1, gpuMilli: 0 }, [], meta);
    expect(book.arrayAllocations(arrayId)).toBe(2);
    book.remove(arrayTaskId(arrayId, 1));
    book.remove(arrayTaskId(arrayId, 2));
    expect(book.arrayAllocations(arrayId)).toBe(0);
  });
});
