import { describe, expect, it } from 'vitest';
import { parseSimulatedQueues } from '../../internal/cli/simulate.js';
import { createPolicy, EvictionReservations, planEvictions, planPass, type EvictionReservation } from '../../internal/scheduler/index.js';
import { ReplaySnapshot } from '../../internal/simulate/replay-snapshot.js';
import { nodeViewsOf, parseTraceJobs, parseTraceNodes, passJobOf, type TracePassJob } from '../../internal/simulate/trace.js';
import { withDefaultQueue } from '../../pkg/model/index.js';

/**
 * Room held for the job evictions were for (eviction-reservations.ts), over
 * the pass the master and the simulator run. Victims stop one at a time, as
 * their workers report: without the hold, each GPU they free goes to the
 * next waiting job of the queue they were evicted from, and the starved job
 * needs another round of evictions.
 */

const HEADER = 'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time';
const NODES = parseTraceNodes('sn,cpu_milli,memory_mib,gpu,model\nn1,64000,262144,4,T4\n');
// Queue a (quota 4) fills the node with 4 preemptible one-GPU jobs; its 4-GPU job z-big, of higher priority,
// preempts them. Queue c (quota 2, nothing running: first in the fair order) has 6 one-GPU jobs waiting.
const JOBS = parseTraceJobs(
  [
    HEADER,
    ...Array.from({ length: 4 }, (_, i) => `z-run-${i},1000,1024,1,1000,,z,Running,0,1000,0`),
    ...Array.from({ length: 6 }, (_, i) => `c-wait-${String(i).padStart(2, '0')},1000,1024,1,1000,,c,Running,1,1000,0`),
    'z-big,4000,4096,4,1000,,z,Running,2,100,0',
  ].join('\n'),
  'jobs',
  { queueColumn: 'qos' },
);
const QUEUES = withDefaultQueue(parseSimulatedQueues(['z=4', 'c=2']));

/** Runs the scenario; `holds` false leaves the reservations out, as before they existed. Returns the eviction rounds and what ran on n1. */
function run(holds: boolean): { rounds: number; evicted: string[]; bigPlacedInPass: number | undefined; stolen: string[] } {
  const snapshot = new ReplaySnapshot<TracePassJob>(nodeViewsOf(NODES));
  const policy = createPolicy('fgd');
  const reservations = new EvictionReservations();
  const job = (name: string): TracePassJob => {
    const trace = JOBS.find((j) => j.name === name);
    if (!trace) throw new Error(name);
    const pass = passJobOf(trace, 0, trace.queue);
    return name === 'z-big' ? { ...pass, priority: 10 } : name.startsWith('z-run') ? { ...pass, preemptible: true } : pass;
  };
  for (let i = 0; i < 4; i++) snapshot.allocatePlaced(job(`z-run-${i}`), 'n1', [String(i)], 0);
  for (let i = 0; i < 6; i++) snapshot.enqueue(job(`c-wait-${String(i).padStart(2, '0')}`));
  snapshot.enqueue(job('z-big'));

  let rounds = 0;
  const evicted: string[] = [];
  const stopping: string[] = [];
  const stolen: string[] = [];
  for (let pass = 1; pass <= 12; pass++) {
    const now = pass * 1000;
    const active: EvictionReservation[] = holds ? reservations.active(now, snapshot.pending) : [];
    const plan = planPass(snapshot, policy, { now, queues: QUEUES, reservations: active });
    for (const p of plan.placements) {
      snapshot.dequeue(p.job.id);
      if (p.job.id === 'z-big') return { rounds, evicted, bigPlacedInPass: pass, stolen };
      stolen.push(p.job.id);
    }
    const evictions = planEvictions(snapshot, plan, QUEUES, now, {});
    if (evictions) {
      rounds++;
      evicted.push(...evictions.victims.map((v) => v.jobId));
      stopping.push(...evictions.victims.map((v) => v.jobId));
      reservations.add(evictions, new Set(evictions.victims.map((v) => v.jobId)), now, 10_000);
      snapshot.allocations.markEvicting(evictions.victims.map((v) => v.jobId));
    }
    // One victim's worker reports it stopped before the next pass: its GPU is free, the job back in its queue.
    const done = stopping.shift();
    if (done !== undefined) {
      const back = snapshot.allocations.remove(done);
      if (back) snapshot.enqueue({ ...job(done), attempt: back.attempt });
    }
  }
  return { rounds, evicted, bigPlacedInPass: undefined, stolen };
}

describe('room held for the job evictions were for', () => {
  it('one round of evictions, the room freed going to that job only, while victims stop one by one', () => {
    const held = run(true);
    expect(held.rounds).toBe(1);
    expect(held.evicted.sort()).toEqual(['z-run-0', 'z-run-1', 'z-run-2', 'z-run-3']);
    expect(held.stolen).toEqual([]);
    // Evictions in pass 1, one victim gone after each pass: the fourth is gone before pass 5.
    expect(held.bigPlacedInPass).toBe(5);
  });

  it('without the hold, the waiting jobs take the freed GPUs and it takes more rounds (the case the hold is for)', () => {
    const loose = run(false);
    expect(loose.stolen.length).toBeGreaterThan(0);
    expect(loose.rounds).toBeGreaterThan(1);
  });
});
