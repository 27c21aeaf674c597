import { describe, expect, it } from 'vitest';
import { type GpuDevice } from '../../pkg/model/index.js';
import {
  allocate,
  createPolicy,
  isGangPlaced,
  newNodeView,
  placeGang,
  policyNames,
  type GangPlaced,
  type GangWaits,
  type JobRequest,
  type NodeView,
} from '../../internal/scheduler/index.js';

const GiB = 2 ** 30;

function gpuNode(id: string, gpus: number, labels: Record<string, string> = {}, cores = 64): NodeView {
  const devices: GpuDevice[] = Array.from({ length: gpus }, (_, index) => ({ index, uuid: `GPU-${id}-${index}`, model: 'A100', memory: 40 * GiB }));
  return newNodeView({ id, capacity: { cpu: cores * 1000, memory: 256 * GiB, gpuMilli: gpus * 1000 }, gpus: devices, labels, executors: ['docker'] });
}

function replicas(n: number, gpuMilli: number, cpu = 1000): JobRequest[] {
  return Array.from({ length: n }, (_, rank) => ({ id: `r${rank}`, kind: 'docker', resources: { cpu, memory: GiB, gpuMilli } }));
}

/** Takes `count` whole GPUs on a node, as another job would. */
function occupy(node: NodeView, count: number): void {
  allocate(node, { cpu: 1000, memory: GiB, gpuMilli: count * 1000 }, node.gpus.slice(0, count).map((g) => g.uuid));
}

const binpack = () => createPolicy('binpack');

function placed(result: ReturnType<typeof placeGang>): GangPlaced {
  if (!isGangPlaced(result)) throw new Error(`expected a placement, got: ${result.reason}`);
  return result;
}

function nodesOf(result: GangPlaced): Record<string, number> {
  const count: Record<string, number> = {};
  for (const p of result.placements) count[p.nodeId] = (count[p.nodeId] ?? 0) + 1;
  return count;
}

describe('placeGang: all or nothing', () => {
  it('4 × 2 GPUs with 6 free GPUs: nothing placed, the snapshot unchanged, and the reason says 3 of 4', () => {
    const nodes = [gpuNode('a', 4), gpuNode('b', 4)];
    occupy(nodes[1], 2); // 4 + 2 = 6 free
    const before = structuredClone(nodes);
    const result = placeGang(replicas(4, 2000), nodes, binpack(), { minAvailable: 4 });
    expect(isGangPlaced(result)).toBe(false);
    expect(result).toEqual({ reason: 'gang waits: 3 of 4 replicas fit now (needs 4)', fitting: 3 });
    expect(nodes).toEqual(before);
  });

  it('4 × 2 GPUs with 8 free GPUs: all 4 placed on distinct devices, the snapshot still unchanged', () => {
    const nodes = [gpuNode('a', 4), gpuNode('b', 4)];
    const before = structuredClone(nodes);
    const result = placed(placeGang(replicas(4, 2000), nodes, binpack(), { minAvailable: 4 }));
    expect(result.placements.map((p) => p.jobId)).toEqual(['r0', 'r1', 'r2', 'r3']);
    expect(nodesOf(result)).toEqual({ a: 2, b: 2 });
    expect(result.nodeCount).toBe(2);
    const devices = result.placements.flatMap((p) => p.gpuDevices);
    expect(devices).toHaveLength(8);
    expect(new Set(devices).size).toBe(8);
    expect(nodes).toEqual(before);
  });

  it('places nothing when even one replica does not fit, and says why', () => {
    const result = placeGang(replicas(2, 8000), [gpuNode('a', 4)], binpack(), { minAvailable: 2 }) as GangWaits;
    expect(result.fitting).toBe(0);
    expect(result.reason).toMatch(/^gang waits for more nodes: even with every node idle only 0 of 2 replicas fit \(needs 2\); a single replica: no registered node can ever run it: needs 8 GPUs/);
  });

  it('a gang that fits an idle cluster but not now says how many fit now', () => {
    const nodes = [gpuNode('a', 2)];
    occupy(nodes[0], 2);
    const result = placeGang(replicas(1, 2000), nodes, binpack(), { minAvailable: 1 }) as GangWaits;
    expect(result.reason).toMatch(/^gang waits: 0 of 1 replicas fit now \(needs 1\); a single replica: waiting for capacity/);
  });

  it('no nodes at all', () => {
    expect(placeGang(replicas(2, 0), [], binpack(), { minAvailable: 1 })).toEqual({
      reason: 'gang waits for a node: no worker is registered',
      fitting: 0,
    });
  });
});

describe('placeGang: minAvailable', () => {
  it('places as many as fit when that is at least minAvailable; the rest are left for later', () => {
    const nodes = [gpuNode('a', 4), gpuNode('b', 4)];
    occupy(nodes[1], 2);
    const result = placed(placeGang(replicas(4, 2000), nodes, binpack(), { minAvailable: 2 }));
    expect(result.placements.map((p) => p.jobId)).toEqual(['r0', 'r1', 'r2']);
  });

  it('fewer than minAvailable fit: nothing', () => {
    const nodes = [gpuNode('a', 2)];
    const result = placeGang(replicas(4, 2000), nodes, binpack(), { minAvailable: 2 });
    expect(result).toMatchObject({ fitting: 1, reason: expect.stringMatching(/only 1 of 4 replicas fit \(needs 2\)/) });
  });

  it('asked for more than the replicas given: waits, saying so', () => {
    const result = placeGang(replicas(1, 0), [gpuNode('a', 0)], binpack(), { minAvailable: 3 });
    expect(result).toMatchObject({ reason: 'gang waits: only 1 replicas left to place, fewer than the 3 it needs at once' });
  });
});

describe('placeGang: packing onto few nodes', () => {
  it('fills one node before using another, even under spread', () => {
    const nodes = [gpuNode('a', 8), gpuNode('b', 8), gpuNode('c', 8)];
    for (const name of ['binpack', 'spread', 'fgd']) {
      const result = placed(placeGang(replicas(4, 2000), nodes, createPolicy(name), { minAvailable: 4 }));
      expect(result.nodeCount, name).toBe(1);
    }
  });

  it('takes the node holding the most replicas first, then the tightest node for the rest', () => {
    // 6 replicas of 1 GPU: c (4 free) first, then 2 more where they fit tightest: b (2 free), not a (3 free).
    const nodes = [gpuNode('a', 3), gpuNode('b', 2), gpuNode('c', 4)];
    const result = placed(placeGang(replicas(6, 1000), nodes, binpack(), { minAvailable: 6 }));
    expect(nodesOf(result)).toEqual({ c: 4, b: 2 });
    // Consecutive ranks share a node.
    expect(result.placements.map((p) => p.nodeId)).toEqual(['c', 'c', 'c', 'c', 'b', 'b']);
  });

  it('a gang that fits a partly used node goes there (binpack), not onto an empty one', () => {
    const nodes = [gpuNode('empty', 8), gpuNode('used', 8)];
    occupy(nodes[1], 4);
    const result = placed(placeGang(replicas(2, 2000), nodes, binpack(), { minAvailable: 2 }));
    expect(nodesOf(result)).toEqual({ used: 2 });
  });

  it('works for every policy and never leaves the snapshot changed', () => {
    for (const name of policyNames()) {
      const nodes = [gpuNode('a', 4), gpuNode('b', 4), gpuNode('c', 2)];
      occupy(nodes[0], 1);
      const before = structuredClone(nodes);
      const result = placed(placeGang(replicas(4, 2000), nodes, createPolicy(name), { minAvailable: 4 }));
      expect(result.placements, name).toHaveLength(4);
      expect(nodes, name).toEqual(before);
    }
  });

  it('CPU-only replicas pack by CPU', () => {
    const cpu = (id: string, cores: number) =>
      newNodeView({ id, capacity: { cpu: cores * 1000, memory: 64 * GiB, gpuMilli: 0 }, gpus: [], labels: {}, executors: ['shell'] });
    const jobs = replicas(5, 0, 2000).map((r) => ({ ...r, kind: 'shell' as const }));
    const result = placed(placeGang(jobs, [cpu('a', 4), cpu('b', 8), cpu('c', 2)], binpack(), { minAvailable: 5 }));
    expect(nodesOf(result)).toEqual({ b: 4, c: 1 });
  });
});

describe('placeGang: topology', () => {
  const rack = (id: string, gpus: number, name: string) => gpuNode(id, gpus, { rack: name });

  it('prefers one domain that holds the whole gang over fewer nodes across domains', () => {
    // r1 holds the gang on two nodes, r2 on one.
    const nodes = [rack('a', 4, 'r1'), rack('b', 4, 'r1'), rack('c', 8, 'r2')];
    const result = placed(placeGang(replicas(4, 2000), nodes, binpack(), { minAvailable: 4, topology: 'rack' }));
    expect(result.domain).toBe('r2');
    expect(nodesOf(result)).toEqual({ c: 4 });
  });

  it('keeps the gang in one rack even when that takes more nodes than mixing racks would', () => {
    const nodes = [rack('a', 4, 'r1'), rack('b', 2, 'r1'), rack('c', 2, 'r1'), rack('d', 6, 'r2'), rack('e', 2, 'r3')];
    // 4 × 2 GPUs: r1 holds it on 3 nodes; mixing d (3 replicas) with another would use 2.
    const result = placed(placeGang(replicas(4, 2000), nodes, binpack(), { minAvailable: 4, topology: 'rack' }));
    expect(result.domain).toBe('r1');
    expect(new Set(result.placements.map((p) => p.nodeId))).toEqual(new Set(['a', 'b', 'c']));
  });

  it('among domains that hold it, the one needing fewest nodes', () => {
    const nodes = [rack('a', 2, 'r1'), rack('b', 2, 'r1'), rack('c', 4, 'r2')];
    const result = placed(placeGang(replicas(2, 2000), nodes, binpack(), { minAvailable: 2, topology: 'rack' }));
    expect(result.domain).toBe('r2');
  });

  it('falls back to any nodes when no domain holds the gang', () => {
    const nodes = [rack('a', 4, 'r1'), rack('b', 4, 'r2'), gpuNode('unlabelled', 2)];
    const result = placed(placeGang(replicas(5, 2000), nodes, binpack(), { minAvailable: 5, topology: 'rack' }));
    expect(result.domain).toBeUndefined();
    expect(result.placements).toHaveLength(5);
    expect(result.nodeCount).toBe(3);
  });

  it('with a partial gang allowed, a domain placing as many as all nodes would is preferred', () => {
    const nodes = [rack('a', 4, 'r1'), rack('b', 2, 'r2')];
    occupy(nodes[1], 2);
    const result = placed(placeGang(replicas(4, 2000), nodes, binpack(), { minAvailable: 2, topology: 'rack' }));
    expect(result).toMatchObject({ domain: 'r1', nodeCount: 1 });
    expect(result.placements).toHaveLength(2);
  });

  it('a topology key no node carries is the same as none', () => {
    const nodes = [gpuNode('a', 4), gpuNode('b', 4)];
    const result = placed(placeGang(replicas(4, 2000), nodes, binpack(), { minAvailable: 4, topology: 'rack' }));
    expect(result.domain).toBeUndefined();
    expect(result.placements).toHaveLength(4);
  });
});
