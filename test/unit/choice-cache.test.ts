import { describe, expect, it } from 'vitest';
import type { GpuDevice } from '../../pkg/model/index.js';
import { ChoiceCache } from '../../internal/scheduler/choice-cache.js';
import {
  allocate,
  chooseGpuIndexes,
  chooseNode,
  createPolicy,
  isPlaced,
  PassPlacer,
  firstRejection,
  fitsNow,
  gpusAvailable,
  newNodeView,
  nodeStateKey,
  policyNames,
  type JobRequest,
  type NodeView,
} from '../../internal/scheduler/index.js';
import { seededRandom } from '../../internal/simulate/protocol.js';

const GiB = 2 ** 30;
const MODELS = ['T4', 'V100M16'];

function node(id: string, gpus: number, model: string, cores = 32): NodeView {
  const devices: GpuDevice[] = Array.from({ length: gpus }, (_, index) => ({ index, uuid: `GPU-${id}-${index}`, model, memory: 16 * GiB }));
  return newNodeView({ id, capacity: { cpu: cores * 1000, memory: 128 * GiB, gpuMilli: gpus * 1000 }, gpus: devices, labels: { zone: id.length % 2 ? 'a' : 'b' }, executors: ['docker'] });
}

/** A random job: CPU-only, a share, or whole GPUs, sometimes of a model, on a label, or of the other kind. */
function randomJob(random: () => number, i: number): JobRequest {
  const pick = random();
  const gpuMilli = pick < 0.2 ? 0 : pick < 0.6 ? 100 * (1 + Math.floor(random() * 9)) : 1000 * (1 + Math.floor(random() * 4));
  return {
    id: `j${i}`,
    kind: random() < 0.05 ? 'shell' : 'docker',
    resources: { cpu: 1000 * (1 + Math.floor(random() * 12)), memory: GiB * (1 + Math.floor(random() * 24)), gpuMilli },
    ...(random() < 0.2 ? { gpuModels: [MODELS[Math.floor(random() * 2)]] } : {}),
    ...(random() < 0.1 ? { nodeSelector: { zone: 'a' } } : {}),
  };
}

/** A cluster of alike nodes filled at random by the fgd policy's own placements. */
function filledCluster(seed: number): { nodes: NodeView[]; jobs: JobRequest[] } {
  const random = seededRandom(seed);
  const nodes = Array.from({ length: 24 }, (_, i) => node(`n${i}`, [1, 2, 4, 8][i % 4], MODELS[i % 2]));
  const jobs: JobRequest[] = [];
  for (let i = 0; i < 120; i++) {
    const job = randomJob(random, i);
    jobs.push(job);
    const target = nodes[Math.floor(random() * nodes.length)];
    const devices = chooseGpuIndexes(job, target);
    if (fitsNow(job, target) && devices) allocate(target, job.resources, devices.map((d) => target.gpus[d].uuid ?? String(d)));
  }
  return { nodes, jobs };
}

describe('the scan checks feasibility without building reasons', () => {
  it('fitsNow is firstRejection finding none, and gpusAvailable is chooseGpuIndexes finding devices', () => {
    for (const seed of [1, 2, 3]) {
      const { nodes, jobs } = filledCluster(seed);
      for (const job of jobs) {
        for (const n of nodes) {
          expect(fitsNow(job, n)).toBe(firstRejection(job, n) === undefined);
          expect(gpusAvailable(job, n)).toBe(chooseGpuIndexes(job, n) !== undefined);
        }
      }
    }
  });
});

describe('ChoiceCache', () => {
  it('keys a node by what a policy reads of it: alike nodes share a key, an allocation or another model changes it', () => {
    const a = node('a', 2, 'T4');
    const b = node('b-other-name', 2, 'T4');
    expect(nodeStateKey(a)).toBe(nodeStateKey(b));
    expect(nodeStateKey(a)).not.toBe(nodeStateKey(node('c', 2, 'V100M16')));
    allocate(a, { cpu: 1000, memory: GiB, gpuMilli: 500 }, [a.gpus[1].uuid ?? '1']);
    expect(nodeStateKey(a)).not.toBe(nodeStateKey(b));
  });

  it('computes once per node state and job shape, again after the node changes or clear()', () => {
    let states = 0;
    let choices = 0;
    const cache = new ChoiceCache<number, number>({
      shapeKey: (job) => String(job.resources.gpuMilli),
      state: (n) => (states++, n.allocated.cpu),
      choose: (job, n, state) => (choices++, state + job.resources.gpuMilli),
    });
    const nodes = [node('a', 2, 'T4'), node('b', 2, 'T4')];
    const job = (id: string, gpuMilli: number): JobRequest => ({ id, kind: 'docker', resources: { cpu: 1000, memory: GiB, gpuMilli } });
    expect(cache.get(job('1', 500), nodes[0])).toBe(500);
    expect(cache.get(job('2', 500), nodes[1])).toBe(500);
    expect([states, choices]).toEqual([1, 1]);
    allocate(nodes[0], { cpu: 2000, memory: GiB, gpuMilli: 0 }, []);
    expect(cache.get(job('3', 500), nodes[0])).toBe(2500);
    expect(cache.get(job('3', 500), nodes[1])).toBe(500);
    expect([states, choices]).toEqual([2, 2]);
    cache.clear();
    expect(cache.get(job('4', 500), nodes[1])).toBe(500);
    expect([states, choices]).toEqual([3, 3]);
  });

  it("gives the fgd policy the scores and devices of a fresh policy's, node by node", () => {
    for (const seed of [4, 5]) {
      const { nodes, jobs } = filledCluster(seed);
      const cached = createPolicy('fgd');
      for (const job of jobs) cached.observe(job);
      for (const job of jobs) {
        for (const n of nodes) {
          if (!fitsNow(job, n)) continue;
          // A fresh policy that saw the same jobs: nothing cached yet.
          const fresh = createPolicy('fgd');
          for (const seen of jobs) fresh.observe(seen);
          expect(cached.score(job, n)).toBe(fresh.score(job, n));
          expect(cached.chooseGpuIndexes?.(job, n)).toEqual(fresh.chooseGpuIndexes?.(job, n));
        }
      }
    }
  });
});

describe("the placer's memo of fit and score per shape and node version", () => {
  it('places a stream of jobs as fresh full scans would, under every policy', () => {
    for (const name of policyNames()) {
      const random = seededRandom(9);
      const nodes = Array.from({ length: 16 }, (_, i) => node(`n${i}`, [1, 2, 4, 8][i % 4], MODELS[i % 2]));
      const twins = nodes.map((n) => node(n.id, n.gpus.length, n.gpus[0].model));
      const policy = createPolicy(name);
      const twinPolicy = createPolicy(name);
      const placer = new PassPlacer(nodes, policy, { sampleSize: Infinity });
      // Few shapes, so the memo answers for most nodes.
      const shapes = Array.from({ length: 6 }, (_, i) => randomJob(random, i));
      for (let i = 0; i < 150; i++) {
        const job = { ...shapes[Math.floor(random() * shapes.length)], id: `j${i}` };
        policy.observe(job);
        twinPolicy.observe(job);
        const got = placer.place(job);
        const want = chooseNode(job, twins, twinPolicy);
        // An unplaced shape's answer is kept from its first try (reasons and all): compare where jobs go.
        expect(isPlaced(got)).toBe(isPlaced(want));
        if (isPlaced(got)) {
          expect(got).toEqual(want);
          allocate(nodes.find((n) => n.id === got.nodeId) as NodeView, job.resources, got.gpuDevices);
          allocate(twins.find((n) => n.id === got.nodeId) as NodeView, job.resources, got.gpuDevices);
        }
      }
    }
  });
});
