import { describe, expect, it } from 'vitest';
import {
  allocate,
  chooseNode,
  feasibleNodesToScore,
  PassPlacer,
  createPolicy,
  isPlaced,
  newNodeView,
  pendingReason,
  utilizationAfter,
  type JobRequest,
  type NodeView,
  type NoPlacement,
} from '../../internal/scheduler/index.js';

const GiB = 2 ** 30;

function node(id: string, cores: number, memGiB: number, gpus = 0, executors: NodeView['executors'] = ['docker', 'shell']): NodeView {
  return newNodeView({
    id,
    capacity: { cpu: cores * 1000, memory: memGiB * GiB, gpuMilli: gpus * 1000 },
    gpus: Array.from({ length: gpus }, (_, index) => ({ index, uuid: `GPU-${id}-${index}`, model: 'V100', memory: 16 * GiB })),
    labels: {},
    executors,
  });
}

function job(cpu: number, memGiB: number, gpu = 0, kind: JobRequest['kind'] = 'docker'): JobRequest {
  return { id: `j${cpu}-${memGiB}-${gpu}`, kind, resources: { cpu, memory: memGiB * GiB, gpuMilli: gpu * 1000 } };
}

const binpack = createPolicy('binpack');
const spread = createPolicy('spread');

describe('scoring', () => {
  it('utilisation counts GPUs only on GPU nodes', () => {
    expect(utilizationAfter(job(1000, 1).resources, node('a', 2, 2))).toBeCloseTo(0.5);
    expect(utilizationAfter(job(1000, 1, 1).resources, node('g', 2, 2, 2))).toBeCloseTo(0.5);
  });

  it('binpack prefers the node that ends up fullest, so large nodes stay free', () => {
    const small = node('small', 4, 8);
    const big = node('big', 16, 64);
    const result = chooseNode(job(1000, 1), [big, small], binpack);
    expect(isPlaced(result) && result.nodeId).toBe('small');
  });

  it('spread prefers the emptiest node', () => {
    const a = node('a', 4, 8);
    const b = node('b', 4, 8);
    allocate(a, { cpu: 2000, memory: 2 * GiB, gpuMilli: 0 }, []);
    const result = chooseNode(job(500, 1), [a, b], spread);
    expect(isPlaced(result) && result.nodeId).toBe('b');
  });

  it('keeps CPU-only jobs off GPU nodes when a CPU node fits', () => {
    const result = chooseNode(job(1000, 1), [node('gpu', 4, 8, 4), node('cpu', 64, 256)], binpack);
    expect(isPlaced(result) && result.nodeId).toBe('cpu');
  });

  it('breaks ties by node id so a snapshot always gives the same answer', () => {
    const result = chooseNode(job(1000, 1), [node('b', 4, 8), node('a', 4, 8)], binpack);
    expect(isPlaced(result) && result.nodeId).toBe('a');
  });
});

describe('feasibility and device choice', () => {
  it('assigns the lowest free GPU devices and never more than free', () => {
    const g = node('g', 8, 32, 4);
    allocate(g, { cpu: 0, memory: 0, gpuMilli: 1000 }, ['GPU-g-0']);
    const result = chooseNode(job(1000, 1, 2), [g], binpack);
    expect(isPlaced(result) && result.gpuDevices).toEqual(['GPU-g-1', 'GPU-g-2']);
    const tooMany = chooseNode(job(1000, 1, 4), [g], binpack);
    expect(isPlaced(tooMany)).toBe(false);
    expect((tooMany as NoPlacement).rejected).toEqual({ gpu: 1 });
  });

  it('counts every rejected node under its reason', () => {
    const nodes = [node('a', 1, 8), node('b', 8, 1), node('c', 8, 8, 0, ['shell'])];
    const result = chooseNode(job(2000, 2), nodes, binpack) as NoPlacement;
    expect(result.rejected).toEqual({ cpu: 1, memory: 1, executor: 1 });
    expect(result.nodesConsidered).toBe(3);
  });
});

describe('pending reasons', () => {
  it('says when no worker is registered', () => {
    expect(pendingReason(job(1, 1), { rejected: {}, nodesConsidered: 0 }, [])).toMatch(/no worker is registered/);
  });

  it('says a job waits for capacity, with the largest free GPU block', () => {
    const a = node('a', 8, 32, 4);
    allocate(a, { cpu: 0, memory: 0, gpuMilli: 2000 }, ['GPU-a-0', 'GPU-a-1']);
    const request = job(1000, 1, 4);
    const result = chooseNode(request, [a], binpack) as NoPlacement;
    expect(pendingReason(request, result, [a])).toBe(
      'waiting for capacity: needs 4 GPUs, most free on a node is 2 (1 node short of gpu)',
    );
  });

  it('says when a job can never fit any registered node', () => {
    const nodes = [node('a', 8, 32, 2), node('b', 4, 16, 1)];
    const request = job(1000, 1, 4);
    const result = chooseNode(request, nodes, binpack) as NoPlacement;
    expect(pendingReason(request, result, nodes)).toBe(
      'no registered node can ever run it: needs 4 GPUs, the largest node has 2; waiting for a larger node',
    );
  });

  it('names a missing executor', () => {
    const nodes = [node('a', 8, 32, 0, ['shell'])];
    const request = job(100, 1);
    const result = chooseNode(request, nodes, binpack) as NoPlacement;
    expect(pendingReason(request, result, nodes)).toMatch(/needs a node with a Docker engine/);
  });
});

describe('policies', () => {
  it('rejects an unknown policy with the known names', () => {
    expect(() => createPolicy('fastest')).toThrow(/unknown policy "fastest" \(known: binpack, spread, fgd\)/);
  });
});

describe('pass placer', () => {
  it('sizes the scored sample like percentageOfNodesToScore', () => {
    expect(feasibleNodesToScore(50)).toBe(50);
    expect(feasibleNodesToScore(1000)).toBe(420);
    expect(feasibleNodesToScore(5000)).toBe(500);
    expect(feasibleNodesToScore(100_000)).toBe(5000);
  });

  it('reusing the last node for a repeated shape chooses exactly what a full scan would (binpack)', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const build = () => Array.from({ length: 30 }, (_, i) => node(`n${String(i).padStart(2, '0')}`, 4 + (i % 5) * 4, 8 + (i % 3) * 16, i % 4 === 0 ? 4 : 0));
    const shortcut = build();
    const reference = build();
    const placer = new PassPlacer(shortcut, binpack, { sampleSize: Infinity });
    const shapes = [job(500, 1), job(1000, 2), job(2000, 4, 1), job(250, 1)];
    for (let i = 0; i < 400; i++) {
      const request = shapes[Math.floor(random() * shapes.length)];
      const a = placer.place(request);
      const b = chooseNode(request, reference, binpack);
      expect(isPlaced(a) && a.nodeId).toBe(isPlaced(b) && b.nodeId);
      if (isPlaced(a) && isPlaced(b)) {
        expect(a.gpuDevices).toEqual(b.gpuDevices);
        allocate(shortcut.find((n) => n.id === a.nodeId)!, request.resources, a.gpuDevices);
        allocate(reference.find((n) => n.id === b.nodeId)!, request.resources, b.gpuDevices);
      }
    }
  });

  it('a sampled scan still counts every node when nothing fits', () => {
    const nodes = Array.from({ length: 300 }, (_, i) => node(`n${i}`, 1, 1));
    const placer = new PassPlacer(nodes, spread, { sampleSize: 10 });
    const result = placer.place(job(2000, 1)) as NoPlacement;
    expect(result.nodesConsidered).toBe(300);
    expect(result.rejected).toEqual({ cpu: 300 });
  });
});
