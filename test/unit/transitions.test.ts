import { describe, expect, it } from 'vitest';
import {
  assertTransition,
  canTransition,
  cancelled,
  corruptJobRecord,
  DEFAULT_RETRY_POLICY,
  endAttempt,
  foldReport,
  IllegalTransitionError,
  isFinal,
  isTitanError,
  JOB_STATES,
  newJobId,
  NO_CAUSES,
  resubmitted,
  transition,
  type Job,
  type JobState,
  type RunReport,
} from '../../pkg/model/index.js';

const job = (state: JobState, extra: Partial<Job> = {}): Job => ({
  id: 'j1', name: 'n', kind: 'shell', command: ['true'], env: {}, labels: {}, priority: 0,
  resources: { cpu: 100, memory: 1, gpuMilli: 0 }, state, createdAt: 1, attempt: 1, node: 'n1', scheduledAt: 2, ...extra,
});

/** Every move the table allows besides staying put, and one real model call that makes it. */
const WITNESSES: Record<string, () => Job> = {
  'Pending→Scheduled': () => transition(job('Pending', { attempt: 0, node: undefined }), 'Scheduled', { node: 'n1', attempt: 1, scheduledAt: 5 }),
  'Pending→Cancelled': () => cancelled(job('Pending'), 5),
  'Scheduled→Running': () => foldReport(job('Scheduled'), running(1), 'n1', DEFAULT_RETRY_POLICY)!,
  'Scheduled→Succeeded': () => foldReport(job('Scheduled'), exited(1, 0), 'n1', DEFAULT_RETRY_POLICY)!,
  'Scheduled→Failed': () => foldReport(job('Scheduled'), { jobId: 'j1', attempt: 1, state: 'Ended', end: { result: { type: 'start-failed', reason: 'pull' }, causes: NO_CAUSES, finishedAt: 5 } }, 'n1', DEFAULT_RETRY_POLICY)!,
  'Scheduled→Cancelled': () => foldReport(job('Scheduled', { cancelRequested: true }), { jobId: 'j1', attempt: 1, state: 'Ended', end: { result: { type: 'not-started' }, causes: { ...NO_CAUSES, cancel: true }, finishedAt: 5 } }, 'n1', DEFAULT_RETRY_POLICY)!,
  'Scheduled→Pending': () => endAttempt(job('Scheduled'), { state: 'Failed', failure: 'node-lost', reason: 'StartDeadline', now: 5 }),
  'Running→Succeeded': () => foldReport(job('Running', { startedAt: 3 }), exited(1, 0), 'n1', DEFAULT_RETRY_POLICY)!,
  'Running→Failed': () => foldReport(job('Running', { startedAt: 3 }), exited(1, 2), 'n1', DEFAULT_RETRY_POLICY)!,
  'Running→Cancelled': () => foldReport(job('Running', { startedAt: 3, cancelRequested: true }), exited(1, 143), 'n1', DEFAULT_RETRY_POLICY)!,
  'Running→Pending': () => endAttempt(job('Running', { startedAt: 3 }), { state: 'Pending', failure: 'evicted', reason: 'Preempted by job x', now: 5 }),
  'Failed→Pending': () => resubmitted(job('Failed', { finishedAt: 5 })),
  'Cancelled→Pending': () => resubmitted(job('Cancelled', { finishedAt: 5 })),
};

function running(attempt: number): RunReport {
  return { jobId: 'j1', attempt, state: 'Running', startedAt: 3 };
}

function exited(attempt: number, exitCode: number): RunReport {
  return { jobId: 'j1', attempt, state: 'Ended', startedAt: 3, end: { result: { type: 'exited', exitCode }, causes: NO_CAUSES, finishedAt: 5 } };
}

const PAIRS = JOB_STATES.flatMap((from) => JOB_STATES.map((to) => [from, to] as const));

describe('the job state table', () => {
  it.each(PAIRS)('%s → %s: transition succeeds exactly when the table allows it', (from, to) => {
    const allowed = canTransition(from, to);
    const move = () => transition(job(from), to, { reason: 'moved' });
    if (allowed) {
      expect(move()).toMatchObject({ id: 'j1', state: to, reason: 'moved' });
      expect(() => assertTransition(job(from), to)).not.toThrow();
      return;
    }
    expect(move).toThrow(IllegalTransitionError);
    try {
      move();
    } catch (err) {
      expect(isTitanError(err, 'Conflict')).toBe(true);
      expect(err).toMatchObject({ jobId: 'j1', from, to });
      expect((err as Error).message).toContain(`job j1 cannot go from ${from} to ${to}`);
    }
  });

  it('a state may always stay itself; a final state leaves only for Pending, and Succeeded never', () => {
    for (const s of JOB_STATES) expect(canTransition(s, s)).toBe(true);
    for (const [from, to] of PAIRS) {
      if (isFinal(from) && from !== to && canTransition(from, to)) expect([from, to]).toEqual([from, 'Pending']);
    }
    for (const to of JOB_STATES) if (to !== 'Succeeded') expect(canTransition('Succeeded', to)).toBe(false);
  });

  it('allows exactly the moves the model makes: each has a witness, and every witness is allowed', () => {
    const allowedMoves = PAIRS.filter(([from, to]) => from !== to && canTransition(from, to)).map(([from, to]) => `${from}→${to}`);
    expect(Object.keys(WITNESSES).sort()).toEqual(allowedMoves.sort());
    for (const [move, make] of Object.entries(WITNESSES)) expect(`${move.split('→')[0]}→${make().state}`).toBe(move);
  });

  it('the patch never carries the state or the id', () => {
    // @ts-expect-error the state is transition's `to`, not a patch field
    transition(job('Pending'), 'Scheduled', { state: 'Running' });
    // @ts-expect-error the id never changes
    transition(job('Pending'), 'Scheduled', { id: 'other' });
  });
});

describe('the model refuses what the table forbids', () => {
  it('retry takes only Failed and Cancelled jobs, with the message the CLI shows', () => {
    for (const s of JOB_STATES) {
      if (s === 'Failed' || s === 'Cancelled') expect(resubmitted(job(s)).state).toBe('Pending');
      else expect(() => resubmitted(job(s))).toThrow(`job j1 is ${s}; only Failed or Cancelled jobs can be retried`);
    }
  });

  it('cancel: Pending ends at once, a held job is flagged, an ended one is refused', () => {
    expect(cancelled(job('Pending'), 9)).toMatchObject({ state: 'Cancelled', reason: 'cancelled before it was placed', finishedAt: 9 });
    expect(cancelled(job('Pending'), 9, 'gang replica failed')).toMatchObject({ state: 'Cancelled', reason: 'gang replica failed' });
    for (const s of ['Scheduled', 'Running'] as const) {
      expect(cancelled(job(s), 9, 'why')).toMatchObject({ state: s, cancelRequested: true, cancelReason: 'why', reason: 'cancel requested; stopping' });
    }
    for (const s of ['Succeeded', 'Failed', 'Cancelled'] as const) {
      expect(() => cancelled(job(s), 9)).toThrow(`job j1 already ended (${s}); nothing to cancel`);
    }
  });

  it('an attempt cannot end for a job that is already final', () => {
    expect(() => endAttempt(job('Succeeded'), { state: 'Failed', failure: 'node-lost', now: 5 })).toThrow(IllegalTransitionError);
    expect(() => endAttempt(job('Cancelled'), { state: 'Succeeded', now: 5 })).toThrow(IllegalTransitionError);
  });

  it('the quarantine of a corrupt record is no transition: it writes a new Failed record whatever was there', () => {
    const id = newJobId(1000);
    const replaced = corruptJobRecord(id, 'bad bytes', 5);
    expect(replaced).toMatchObject({ id, state: 'Failed', attempt: 0 });
    // From then on the table holds: it can be retried like any Failed job.
    expect(resubmitted(replaced!).state).toBe('Pending');
  });
});
