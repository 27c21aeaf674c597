import { describe, expect, it } from 'vitest';
import { arrayStatusView, renderArrayStatus } from '../../internal/cli/arrays.js';
import { planDocument, planSubmission } from '../../internal/cli/submit.js';
import { titanEnv } from '../../internal/worker/executor.js';
import { arrayTaskId, type Assignment, type Job } from '../../pkg/model/index.js';
import { encode, records } from '../../pkg/store/codec.js';
import { refusal } from '../harness/refusal.js';


const invalid = (run: () => unknown): string => refusal(run).message;

describe('planning an array', () => {
  it('makes count tasks of one spec, ids from the array id and index, each stored with its array record', () => {
    const plan = planSubmission({ shell: 'echo $TITAN_ARRAY_INDEX', array: '0-20:10%2', name: 'sweep' }, { now: 1000 });
    const array = plan.array;
    expect(array).toMatchObject({ first: 0, last: 20, step: 10, count: 3, max: 2 });
    expect(plan.jobs.map((j) => j.id)).toEqual([0, 10, 20].map((i) => arrayTaskId(array?.id ?? '', i)));
    for (const [i, job] of plan.jobs.entries()) {
      expect(job).toMatchObject({ name: 'sweep', state: 'Pending', createdAt: 1000, array: { id: array?.id, index: i * 10, count: 3, max: 2 } });
      expect(records.job.decode(encode(job), 'k')).toEqual(job);
    }
    expect(plan.jobs[0].env).not.toBe(plan.jobs[1].env);
  });

  it('a spec document plans the same way (the API path), and the same input is refused the same way', () => {
    expect(planDocument({ shell: 'true', array: '1-3' }).jobs.map((j) => j.array?.index)).toEqual([1, 2, 3]);
    const viaFlags = invalid(() => planSubmission({ shell: 'true', array: '5-2' }));
    expect(invalid(() => planDocument({ shell: 'true', array: '5-2' }))).toBe(viaFlags);
    expect(invalid(() => planSubmission({ shell: 'true', array: '0-3', replicas: '2' }))).toMatch(/--array and --replicas/);
    expect(invalid(() => planSubmission({ shell: 'true', array: '0-3', count: '2' }))).toMatch(/-n\/--count/);
    expect(invalid(() => planSubmission({ shell: 'true', array: '0-3', wait: true }))).toMatch(/--wait follows one job/);
  });

  it('a 10,000-task array is planned in well under a second', () => {
    const started = performance.now();
    const plan = planSubmission({ shell: 'true', array: '0-9999' });
    expect(plan.jobs).toHaveLength(10_000);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('the worker gives each task TITAN_ARRAY_ID, TITAN_ARRAY_INDEX and TITAN_ARRAY_COUNT', () => {
    const [, task] = planSubmission({ shell: 'true', array: '4-6' }).jobs;
    const assignment: Assignment = { jobId: task.id, nodeId: 'n1', attempt: 1, resources: task.resources, gpuDevices: [], assignedAt: 0 };
    expect(titanEnv(task, assignment)).toMatchObject({ TITAN_JOB_ID: task.id, TITAN_ARRAY_ID: task.array?.id, TITAN_ARRAY_INDEX: '5', TITAN_ARRAY_COUNT: '3' });
  });
});

describe('array status', () => {
  it('counts tasks per state and lists the failed indexes', () => {
    const plan = planSubmission({ shell: 'true', array: '0-5%2', name: 'sweep' });
    const states: Job['state'][] = ['Succeeded', 'Failed', 'Running', 'Pending', 'Failed', 'Cancelled'];
    const tasks = plan.jobs.map((j, i) => ({ ...j, state: states[i] }));
    const doc = arrayStatusView(plan.array?.id ?? '', tasks);
    expect(doc).toMatchObject({
      name: 'sweep',
      count: 6,
      max: 2,
      tasks: { Pending: 1, Scheduled: 0, Running: 1, Succeeded: 1, Failed: 2, Cancelled: 1 },
      failedIndexes: [1, 4],
    });
    const text = renderArrayStatus(doc);
    expect(text).toMatch(/Tasks:\s+6, at most 2 at once/);
    expect(text).toMatch(/Failed indexes:\s+1,4/);
  });
});
