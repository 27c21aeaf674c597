import { describe, expect, it } from 'vitest';
import { isFinal, nextPhase, RUN_PHASES, type RunPhase } from '../../internal/worker/run-phase.js';
import { StopRequests } from '../../internal/worker/run-stop.js';
import { isTitanError, NO_CAUSES, type Assignment } from '../../pkg/model/index.js';

/** Every way a run goes, as JobRun walks it. */
const COURSES: RunPhase[][] = [
  ['claiming', 'starting', 'running', 'finishing', 'reporting', 'reported'], // ran and reported
  ['claiming', 'starting', 'finishing', 'reporting', 'reported'], // failed to start, or stopped before it started
  ['claiming', 'finishing', 'reporting', 'reported'], // cancelled before the claim; an earlier process journaled the end
  ['claiming', 'reporting', 'reported'], // the job does not read: reported as failed to start
  ['claiming', 'reported'], // an earlier process reported it already
  ['claiming', 'recovering', 'running', 'finishing', 'reporting', 'reported'], // re-attached
  ['claiming', 'recovering', 'finishing', 'reporting', 'not-ours'], // gone or not followable; the report was fenced
  ['claiming', 'recovering', 'retry'], // the container could not be looked for
  ['claiming', 'retry'], // the claim could not be written
  ['claiming', 'not-ours'], // the claim was fenced
  ['claiming', 'starting', 'running', 'finishing', 'not-ours'], // taken away while it ran
  ['claiming', 'starting', 'running', 'finishing', 'reporting', 'retry'], // the end could not be reported
];

describe('run phases', () => {
  it('allow every course a run takes', () => {
    for (const course of COURSES) {
      let phase = course[0];
      for (const to of course.slice(1)) phase = nextPhase(phase, to);
      expect(phase).toBe(course[course.length - 1]);
      expect(isFinal(phase)).toBe(true);
    }
  });

  it('refuse any other change, as a programming error', () => {
    const illegal: [RunPhase, RunPhase][] = [
      ['claiming', 'running'], // nothing runs before it started or was found again
      ['running', 'reporting'], // the log is stored and the run released before the end is reported
      ['running', 'starting'],
      ['finishing', 'running'],
      ['reporting', 'finishing'],
      ['reported', 'reporting'],
      ['retry', 'claiming'], // a retry is a new run of the assignment
      ['not-ours', 'detached'],
    ];
    for (const [from, to] of illegal) {
      let err: unknown;
      try {
        nextPhase(from, to);
      } catch (e) {
        err = e;
      }
      expect(isTitanError(err, 'Internal'), `${from} → ${to}`).toBe(true);
    }
  });

  it('let any run under way or being recorded be detached, and keep it detached', () => {
    for (const phase of RUN_PHASES.filter((p) => !isFinal(p))) expect(nextPhase(phase, 'detached')).toBe('detached');
    for (const phase of RUN_PHASES) expect(nextPhase('detached', phase)).toBe('detached');
    expect(RUN_PHASES.filter(isFinal).sort()).toEqual(['detached', 'not-ours', 'reported', 'retry']);
  });
});

describe('stop requests', () => {
  it('count each cause once and keep the shortest grace', () => {
    const stops = new StopRequests();
    expect(stops.any).toBe(false);
    expect(stops.graceMs(2000)).toBe(2000);
    expect(stops.add('cancel', 5000)).toBe(true);
    expect(stops.add('cancel', 100)).toBe(false); // a repeated cancel changes nothing
    expect(stops.graceMs(2000)).toBe(5000);
    expect(stops.add('fenced', 0)).toBe(true);
    expect(stops.graceMs(2000)).toBe(0);
    expect(stops.any).toBe(true);
    expect(stops.recorded()).toEqual({ ...NO_CAUSES, cancel: true, fenced: true });
  });

  it('record an eviction with its reason, and never a take-away', () => {
    const stops = new StopRequests();
    expect(stops.add('taken', 2000)).toBe(true);
    expect(stops.has('taken')).toBe(true);
    expect(stops.recorded()).toEqual(NO_CAUSES);
    expect(stops.evict('preempted', 3000)).toBe(true);
    expect(stops.evict('again', 1)).toBe(false);
    expect(stops.recorded()).toEqual({ ...NO_CAUSES, evicted: 'preempted' });
    expect(stops.graceMs(9)).toBe(2000);
  });

  it('take a cancel and an eviction flagged on the assignment', () => {
    const stops = new StopRequests();
    const assignment: Assignment = {
      jobId: 'j', nodeId: 'n', attempt: 1, resources: { cpu: 100, memory: 1, gpuMilli: 0 }, gpuDevices: [], assignedAt: 1,
      cancel: { requestedAt: 2, graceMs: 700 }, evict: { requestedAt: 3, reason: 'drain', graceMs: 900 },
    };
    stops.addFlagsOf(assignment);
    expect(stops.recorded()).toEqual({ ...NO_CAUSES, cancel: true, evicted: 'drain' });
    expect(stops.graceMs(2000)).toBe(700);
  });
});
