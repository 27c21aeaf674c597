import { describe, expect, it } from 'vitest';
import { planSubmission } from '../../internal/cli/submit.js';
import {
  buildJobSpec,
  checkSpecDocument,
  conditionHolds,
  dependencyVerdict,
  MAX_DEPENDENCIES,
  MAX_GANG_SIZE,
  parseAfter,
  type JobState,
  type ParentState,
} from '../../pkg/model/index.js';
import { creationBatches, MAX_JOBS_PER_TXN } from '../../pkg/store/job-records.js';
import { MAX_TXN_OPS } from '../../pkg/store/txn.js';
import { makeJob } from '../harness/jobs.js';

describe('parseAfter', () => {
  it('reads ok:, notok: and any: with one or more ids, merging repeated conditions', () => {
    expect(parseAfter('ok:a1,b2')).toEqual([{ condition: 'ok', jobs: ['a1', 'b2'] }]);
    expect(parseAfter(['ok:a1', 'any:c3', 'OK:b2, a1', 'notok:d4'])).toEqual([
      { condition: 'ok', jobs: ['a1', 'b2'] },
      { condition: 'any', jobs: ['c3'] },
      { condition: 'notok', jobs: ['d4'] },
    ]);
    // An array's id stands for all of its tasks; ID[7] is one task, as everywhere.
    expect(parseAfter('any:0000000000arr,0000000000arr[7]')).toEqual([{ condition: 'any', jobs: ['0000000000arr', '0000000000arr-000007'] }]);
  });

  it.each([
    ['afterok:a1', /"afterok:a1" is not ok:ID/],
    ['a1', /"a1" is not ok:ID/],
    ['ok:', /a job id is missing/],
    ['ok:a1,,b2', /a job id is missing/],
    ['ok:../x', /"\.\.\/x" is not a job id/],
    ['ok:a b', /"a b" is not a job id/],
    ['ok:x[7]', /"x\[7\]" is not a job id or an array task/],
  ])('refuses %j', (value, message) => {
    expect(() => parseAfter(value)).toThrowError(message);
    expect(() => parseAfter(value)).toThrowError(/^after: /);
  });

  it('refuses a job under both ok and notok, an empty list and more than MAX_DEPENDENCIES jobs', () => {
    expect(() => parseAfter(['ok:a1', 'notok:a1'])).toThrowError(/job a1 is named under ok and notok/);
    expect(() => parseAfter([])).toThrowError(/names no job/);
    const many = Array.from({ length: MAX_DEPENDENCIES + 1 }, (_, i) => `j${i}`);
    expect(() => parseAfter(`any:${many.join(',')}`)).toThrowError(`${MAX_DEPENDENCIES + 1} jobs named; a job may wait for at most ${MAX_DEPENDENCIES}`);
    expect(parseAfter(`any:${many.slice(1).join(',')}`)[0].jobs).toHaveLength(MAX_DEPENDENCIES);
  });
});

describe('whether a dependent is blocked, free or never satisfiable', () => {
  const table: [ParentState | undefined, boolean | undefined, boolean | undefined, boolean | undefined][] = [
    // state        ok         notok      any
    [undefined, undefined, undefined, undefined],
    ['Pending', undefined, undefined, undefined],
    ['Scheduled', undefined, undefined, undefined],
    ['Running', undefined, undefined, undefined],
    ['Succeeded', true, false, true],
    ['Failed', false, true, true],
    ['Cancelled', false, true, true],
    ['gone', false, false, true],
  ];
  it.each(table)('a parent %s: ok %s, notok %s, any %s', (state, ok, notok, any) => {
    expect(conditionHolds('ok', state)).toBe(ok);
    expect(conditionHolds('notok', state)).toBe(notok);
    expect(conditionHolds('any', state)).toBe(any);
  });

  it('waits naming only the conditions still open, is satisfied when all hold, never when one cannot', () => {
    const after = parseAfter(['ok:a,b', 'any:c']);
    const states = (s: Record<string, JobState>) => (id: string) => s[id];
    expect(dependencyVerdict(after, states({}))).toEqual({ kind: 'waiting', reason: 'Dependency: waits for ok:a,b any:c' });
    expect(dependencyVerdict(after, states({ a: 'Succeeded', c: 'Running' }))).toEqual({ kind: 'waiting', reason: 'Dependency: waits for ok:b any:c' });
    expect(dependencyVerdict(after, states({ a: 'Succeeded', b: 'Succeeded', c: 'Failed' }))).toEqual({ kind: 'satisfied' });
    expect(dependencyVerdict(after, states({ b: 'Failed' }))).toEqual({ kind: 'never', reason: 'DependencyNeverSatisfied: ok:b, but job b Failed' });
    expect(dependencyVerdict(parseAfter('notok:a'), states({ a: 'Succeeded' }))).toMatchObject({ kind: 'never', reason: /^DependencyNeverSatisfied: notok:a, but job a Succeeded/ });
    expect(dependencyVerdict(parseAfter('ok:a'), () => 'gone')).toMatchObject({ kind: 'never', reason: /job a was removed before its end was seen/ });
    expect(dependencyVerdict(parseAfter('any:a'), () => 'gone')).toEqual({ kind: 'satisfied' });
  });
});

describe('--after on submissions', () => {
  it('stores the conditions on the job, which says from the start what it waits for', () => {
    const plan = planSubmission({ shell: 'true', after: ['ok:a1,b2', 'any:c3'] });
    expect(plan.jobs[0]).toMatchObject({
      after: [
        { condition: 'ok', jobs: ['a1', 'b2'] },
        { condition: 'any', jobs: ['c3'] },
      ],
      reason: 'Dependency: waits for ok:a1,b2 any:c3',
      state: 'Pending',
    });
  });

  it('adds flags to a spec file\'s conditions; every replica of a gang and every -n job carries them', () => {
    const readText = (): string => 'shell: "true"\nafter: ok:a1\n';
    expect(planSubmission({ file: 'job.yaml', after: ['notok:b2'] }, { readText }).jobs[0].after).toEqual([
      { condition: 'ok', jobs: ['a1'] },
      { condition: 'notok', jobs: ['b2'] },
    ]);
    const gang = planSubmission({ shell: 'true', replicas: '3', after: ['ok:a1'] });
    for (const job of gang.jobs) expect(job).toMatchObject({ after: [{ condition: 'ok', jobs: ['a1'] }], reason: 'Dependency: waits for ok:a1' });
    const bulk = planSubmission({ count: '2', time: '1', after: ['any:a1'] });
    expect(bulk.jobs.map((j) => j.after)).toEqual([[{ condition: 'any', jobs: ['a1'] }], [{ condition: 'any', jobs: ['a1'] }]]);
    expect(bulk.jobs[0].after).not.toBe(bulk.jobs[1].after);
  });

  it('a spec document (the API\'s POST /v1/jobs) takes a string or a list, validated the same way', () => {
    expect(buildJobSpec(checkSpecDocument({ shell: 'true', after: ['ok:a1', 'any:b2'] }, 'doc')).after).toHaveLength(2);
    expect(buildJobSpec(checkSpecDocument({ shell: 'true', after: 'notok:a1' }, 'doc')).after).toEqual([{ condition: 'notok', jobs: ['a1'] }]);
    expect(() => checkSpecDocument({ shell: 'true', after: 7 }, 'doc')).toThrowError(/after/);
    expect(() => buildJobSpec(checkSpecDocument({ shell: 'true', after: 'later:a1' }, 'doc'))).toThrowError(/^after: "later:a1"/);
  });
});

describe('creationBatches', () => {
  it('keeps a whole gang with the most dependencies in a queue in one transaction', () => {
    const after = parseAfter(`ok:${Array.from({ length: MAX_DEPENDENCIES }, (_, i) => `p${i}`).join(',')}`);
    const gang = Array.from({ length: MAX_GANG_SIZE }, () => makeJob({ queue: 'team', after }));
    const batches = creationBatches(gang);
    expect(batches).toHaveLength(1);
    expect(batches[0]).toMatchObject({ queues: ['team'], parents: after[0].jobs });
  });

  it('cuts jobs at MAX_JOBS_PER_TXN, and sooner when their parents would take the compares over etcd\'s limit', () => {
    expect(creationBatches(Array.from({ length: 130 }, () => makeJob())).map((b) => b.jobs.length)).toEqual([MAX_JOBS_PER_TXN, MAX_JOBS_PER_TXN, 2]);
    const jobs = Array.from({ length: 10 }, (_, i) => makeJob({ after: parseAfter(`any:${Array.from({ length: 30 }, (_, k) => `p${i}x${k}`).join(',')}`) }));
    const batches = creationBatches(jobs);
    expect(batches.flatMap((b) => b.jobs)).toEqual(jobs);
    for (const b of batches) expect(1 + b.queues.length + b.parents.length + b.jobs.length).toBeLessThanOrEqual(MAX_TXN_OPS);
    expect(batches.map((b) => b.jobs.length)).toEqual([4, 4, 2]);
  });
});

describe('docs/dependencies.md', () => {
  it('gives the limit of jobs one job may wait for, as the code has it', async () => {
    const fs = await import('node:fs');
    const text = fs.readFileSync(new URL('../../docs/dependencies.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');
    expect(text).toContain(`A job may name at most ${MAX_DEPENDENCIES} jobs (\`MAX_DEPENDENCIES\``);
    const layout = fs.readFileSync(new URL('../../docs/etcd-layout.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');
    expect(layout).toContain(`over etcd's ${MAX_TXN_OPS}.`);
    expect(layout).toContain(`**Submit**: up to ${MAX_JOBS_PER_TXN} jobs per transaction`);
  });
});
