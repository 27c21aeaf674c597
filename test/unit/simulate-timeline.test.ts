import { describe, expect, it } from 'vitest';
import { parseSimulatedQueues } from '../../internal/cli/simulate.js';
import { simulateTimeline } from '../../internal/simulate/timeline.js';
import { parseTraceJobs, parseTraceNodes } from '../../internal/simulate/trace.js';

const NODES = parseTraceNodes('sn,cpu_milli,memory_mib,gpu,model\nn1,64000,262144,4,T4\n');

/** Eight 1-GPU tasks per team, all arriving at 0 and running 10 s. */
function flood(teams: string[]): string {
  const rows = teams.flatMap((team) => Array.from({ length: 8 }, (_, i) => `${team}-${i},1000,1024,1,1000,,${team},Running,0,10,0`));
  return ['name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time', ...rows].join('\n');
}

describe('simulate in time, with queues', () => {
  it('splits a flooded cluster by quota and reports waits', () => {
    const jobs = parseTraceJobs(flood(['a', 'b']), 'jobs', { queueColumn: 'qos' });
    const report = simulateTimeline(NODES, jobs, { policy: 'fgd', queues: parseSimulatedQueues(['a=2', 'b=2']) });
    const a = report.queues.find((q) => q.name === 'a');
    const b = report.queues.find((q) => q.name === 'b');
    // 4 GPUs, 2 per queue at a time: each queue starts 2 tasks at 0, 10, 20 and 30 s.
    expect(a).toMatchObject({ jobs: 8, neverStarted: 0, waitP50Seconds: 10, waitP99Seconds: 30, meanGpuSharePct: 50 });
    expect(b).toMatchObject({ jobs: 8, neverStarted: 0, waitP50Seconds: 10, waitP99Seconds: 30, meanGpuSharePct: 50 });
    expect(report).toMatchObject({ jobs: 16, started: 16, waitP50Seconds: 10, waitP99Seconds: 30 });
  });

  it('lends idle capacity by weight beyond the quotas', () => {
    const jobs = parseTraceJobs(flood(['a', 'b']), 'jobs', { queueColumn: 'qos' });
    const report = simulateTimeline(NODES, jobs, { policy: 'fgd', queues: parseSimulatedQueues(['a=0:3', 'b=0:1']) });
    const share = (name: string): number => report.queues.find((q) => q.name === name)?.meanGpuSharePct ?? -1;
    expect(share('a')).toBe(75);
    expect(share('b')).toBe(25);
  });

  it('names bad queue flags', () => {
    expect(() => parseSimulatedQueues(['a'])).toThrow('queue: "a" is not NAME=GPUS[:WEIGHT] (e.g. LS=3000:2)');
    expect(() => parseSimulatedQueues(['a=lots'])).toThrow(/quota|gpu/i);
  });
});
