import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newJob } from '../../internal/cli/submit.js';
import {
  canTransition,
  cancelled,
  DEFAULT_RETRY_POLICY,
  endAttempt,
  foldReport,
  isFinal,
  isTitanError,
  JOB_STATES,
  resubmitted,
  transition,
  type Job,
  type JobSpec,
  type JobState,
  type RetryPolicy,
  type RunReport,
} from '../../pkg/model/index.js';

/**
 * Random event sequences through the model's own functions, each applied
 * only where its real caller would apply it (the master places Pending jobs
 * only, folds a node's reports only while the attempt's assignment exists,
 * and so on): every state change must be one the table allows, and a final
 * state is left only by `titan retry`.
 */
type Event =
  | { type: 'place' }
  | { type: 'start' }
  | { type: 'exit'; code: number; cancelSeen: boolean }
  | { type: 'start-failed' }
  | { type: 'node-lost' }
  | { type: 'evict' }
  | { type: 'cancel' }
  | { type: 'retry' }
  | { type: 'start-deadline' }
  | { type: 'stale-report' };

/** Placing, starting and ending runs come more often than the rest, so sequences get past Scheduled. */
const event: fc.Arbitrary<Event> = fc.oneof(
  { arbitrary: fc.constant({ type: 'place' as const }), weight: 4 },
  { arbitrary: fc.constant({ type: 'start' as const }), weight: 4 },
  {
    arbitrary: fc.record({ type: fc.constant('exit' as const), code: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 255 })), cancelSeen: fc.boolean() }),
    weight: 3,
  },
  fc.constant({ type: 'start-failed' as const }),
  fc.constant({ type: 'node-lost' as const }),
  fc.constant({ type: 'evict' as const }),
  fc.constant({ type: 'cancel' as const }),
  fc.constant({ type: 'retry' as const }),
  fc.constant({ type: 'start-deadline' as const }),
  fc.constant({ type: 'stale-report' as const }),
);

const NODE = 'n1';

const spec: JobSpec = {
  name: 'prop', kind: 'shell', command: ['true'], env: {}, labels: {}, priority: 0, resources: { cpu: 100, memory: 1, gpuMilli: 0 },
};

/** A node's attempt exists (assignment held) only while the job is Scheduled or Running. */
const held = (job: Job): boolean => job.state === 'Scheduled' || job.state === 'Running';

function ended(job: Job, result: NonNullable<RunReport['end']>['result'], now: number, causes: Partial<NonNullable<RunReport['end']>['causes']> = {}, startedAt?: number): RunReport {
  return {
    jobId: job.id,
    attempt: job.attempt,
    state: 'Ended',
    ...(startedAt !== undefined ? { startedAt } : {}),
    end: { result, causes: { cancel: false, timeout: false, fenced: false, worker: false, ...causes }, finishedAt: now },
  };
}

/** The job after one event, or the same job when the event does not apply; refusals are checked here. */
function apply(job: Job, e: Event, now: number, policy: RetryPolicy): Job {
  const fold = (report: RunReport): Job => (held(job) ? foldReport(job, report, NODE, policy) ?? job : job);
  switch (e.type) {
    case 'place': {
      // What the master's placement writes (the scheduler's pass builds it in place).
      if (job.state !== 'Pending') return job;
      const { reason: _r, reasonAt: _ra, retryAt: _rt, ...rest } = job;
      return transition(rest, 'Scheduled', { node: NODE, attempt: job.attempt + 1, gpuDevices: [], scheduledAt: now });
    }
    case 'start':
      return fold({ jobId: job.id, attempt: job.attempt, state: 'Running', startedAt: now });
    case 'exit':
      return fold(ended(job, { type: 'exited', exitCode: e.code }, now, { cancel: e.cancelSeen && job.cancelRequested === true }, job.startedAt ?? now));
    case 'start-failed':
      return fold(ended(job, { type: 'start-failed', reason: 'image pull failed' }, now));
    case 'evict':
      return fold(
        job.state === 'Running'
          ? ended(job, { type: 'exited', exitCode: 143 }, now, { evicted: 'Preempted by job x' }, job.startedAt)
          : ended(job, { type: 'not-started' }, now, { evicted: 'Preempted by job x' }),
      );
    case 'stale-report': {
      const stale = { ...ended(job, { type: 'exited', exitCode: 1 }, now, {}, now), attempt: job.attempt - 1 };
      expect(foldReport(job, stale, NODE, policy)).toBeUndefined();
      return job;
    }
    case 'node-lost':
      // As the master's node-loss requeue does.
      if (!held(job)) return job;
      return endAttempt(job, { state: job.cancelRequested ? 'Cancelled' : 'Failed', failure: 'node-lost', reason: 'node left', now }, policy);
    case 'start-deadline':
      if (job.state !== 'Scheduled') return job;
      return endAttempt(job, { state: 'Failed', failure: 'node-lost', reason: 'StartDeadline', now }, policy);
    case 'cancel':
      return refusedOr(() => cancelled(job, now), isFinal(job.state), job);
    case 'retry':
      return refusedOr(() => resubmitted(job), job.state !== 'Failed' && job.state !== 'Cancelled', job);
  }
}

/** A user's command: refused (Conflict) exactly when `refused`, and then nothing changes. */
function refusedOr(run: () => Job, refused: boolean, job: Job): Job {
  try {
    const next = run();
    expect(refused).toBe(false);
    return next;
  } catch (err) {
    if (!isTitanError(err, 'Conflict') || !refused) throw err;
    return job;
  }
}

describe('job state machine, random event sequences', () => {
  it('only moves the table allows; final states leave only through retry', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(
        fc.array(event, { maxLength: 40, size: 'max' }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 2 }),
        (events, retries, nodeLostRetries) => {
          const policy = { ...DEFAULT_RETRY_POLICY, nodeLostRetries };
          let job = newJob({ ...spec, retries }, 1000); // submit
          let now = 1000;
          for (const e of events) {
            now += 10;
            const next = apply(job, e, now, policy);
            const [from, to]: JobState[] = [job.state, next.state];
            expect(canTransition(from, to), `${e.type}: ${from} → ${to}`).toBe(true);
            if (isFinal(from) && to !== from) expect(e.type).toBe('retry');
            expect(next.attempt).toBeGreaterThanOrEqual(job.attempt);
            expect((next.history ?? []).length).toBeGreaterThanOrEqual((job.history ?? []).length);
            if (from !== to) seen.add(`${from}→${to}`);
            job = next;
          }
        },
      ),
      { numRuns: 500 },
    );
    // The sequences reached every move the table allows: the table is what the system does, no wider.
    const allowed = JOB_STATES.flatMap((from) => JOB_STATES.filter((to) => to !== from && canTransition(from, to)).map((to) => `${from}→${to}`));
    expect([...seen].sort()).toEqual(allowed.sort());
  });
});
