import { describe, expect, it } from 'vitest';
import { resolveMasterConfig } from '../../internal/master/index.js';
import { createPolicy, parseSampleNodes, planPass } from '../../internal/scheduler/index.js';
import { ReplaySnapshot } from '../../internal/simulate/replay-snapshot.js';
import { nodeViewsOf, parseTraceJobs, passJobOf, type TraceNode } from '../../internal/simulate/trace.js';
import { isTitanError } from '../../pkg/model/index.js';

describe('--sample-nodes', () => {
  it('is all (a full scan) or a positive count', () => {
    expect(parseSampleNodes('all')).toBe(Infinity);
    expect(parseSampleNodes('250')).toBe(250);
    for (const bad of ['0', '-3', 'some']) {
      try {
        parseSampleNodes(bad);
        expect.unreachable(bad);
      } catch (err) {
        expect(isTitanError(err, 'InvalidInput')).toBe(true);
      }
    }
  });

  it("is the master's config too: flag over environment, absent by default", () => {
    expect(resolveMasterConfig({}, {}).sampleNodes).toBeUndefined();
    expect(resolveMasterConfig({}, { TITAN_MASTER_SAMPLE_NODES: 'all' }).sampleNodes).toBe(Infinity);
    expect(resolveMasterConfig({ sampleNodes: '300' }, { TITAN_MASTER_SAMPLE_NODES: 'all' }).sampleNodes).toBe(300);
    expect(() => resolveMasterConfig({ sampleNodes: 'none' }, {})).toThrow(/--sample-nodes/);
  });

  it('sets how many feasible nodes a pass scores: the default scans 100 of 200 nodes from the first, all finds the last', () => {
    // spread prefers the emptiest node after placement: the big node, last in the list.
    const nodes: TraceNode[] = Array.from({ length: 200 }, (_, i) => ({ id: `n${String(i).padStart(3, '0')}`, cpu: i === 199 ? 64_000 : 2000, memory: 2 ** 34, gpus: 0, model: '' }));
    const [job] = parseTraceJobs('name,cpu_milli,memory_mib,num_gpu,gpu_milli\nt,1000,1024,0,0\n');
    const placed = (sampleSize?: number): string | undefined => {
      const snapshot = new ReplaySnapshot(nodeViewsOf(nodes));
      snapshot.enqueue(passJobOf(job, 0));
      const plan = planPass(snapshot, createPolicy('spread'), { now: 0, queues: [], backfill: false, ...(sampleSize === undefined ? {} : { sampleSize }) });
      return plan.placements[0]?.nodeId;
    };
    expect(placed()).not.toBe('n199');
    expect(placed(Infinity)).toBe('n199');
    expect(placed(parseSampleNodes('all'))).toBe('n199');
  });
});
