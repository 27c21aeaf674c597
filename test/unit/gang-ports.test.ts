import { describe, expect, it } from 'vitest';
import {
  AllocationBook,
  createPolicy,
  freePortCount,
  isGangPlaced,
  lowestFreePort,
  newNodePorts,
  newNodeView,
  placeGang,
  type GangPlaced,
  type JobRequest,
  type NodeView,
} from '../../internal/scheduler/index.js';
import { DEFAULT_PORT_RANGE, type PortRange } from '../../pkg/model/index.js';

/** Pure tests of the ports gang replicas hold: chosen by placeGang, held and released by the AllocationBook. */

const GiB = 2 ** 30;

function cpuNode(id: string, cores: number, portRange?: PortRange): NodeView {
  return newNodeView({ id, capacity: { cpu: cores * 1000, memory: 64 * GiB, gpuMilli: 0 }, gpus: [], labels: {}, executors: ['shell'], ...(portRange ? { portRange } : {}) });
}

function replicas(n: number, prefix = 'r'): JobRequest[] {
  return Array.from({ length: n }, (_, rank) => ({ id: `${prefix}${rank}`, kind: 'shell', resources: { cpu: 1000, memory: GiB, gpuMilli: 0 } }));
}

function placed(result: ReturnType<typeof placeGang>): GangPlaced {
  if (!isGangPlaced(result)) throw new Error(`expected a placement, got: ${result.reason}`);
  return result;
}

const binpack = createPolicy('binpack');

/** Allocates a plan's placements in the book, as a pass does (allocatePlaced). */
function allocateAll(book: AllocationBook, result: GangPlaced): void {
  for (const p of result.placements) {
    book.add(p.jobId, p.nodeId, { cpu: 1000, memory: GiB, gpuMilli: 0 }, p.gpuDevices, { queue: 'default', priority: 0, attempt: 1, since: 0, evicting: false, gang: 'g', port: p.port });
  }
}

describe('gang ports', () => {
  it('a node without --port-range in its record (an older worker) offers the default range', () => {
    const node = cpuNode('n1', 4);
    expect(node.ports).toMatchObject({ first: DEFAULT_PORT_RANGE.first, last: DEFAULT_PORT_RANGE.last });
    expect(freePortCount(node.ports)).toBe(DEFAULT_PORT_RANGE.last - DEFAULT_PORT_RANGE.first + 1);
  });

  it('each replica on a node gets its own port, the lowest free ones; the snapshot is left unchanged', () => {
    const node = cpuNode('n1', 8, { first: 31000, last: 31099 });
    const result = placed(placeGang(replicas(3), [node], binpack, { minAvailable: 3 }));
    expect(result.placements.map((p) => p.port)).toEqual([31000, 31001, 31002]);
    expect(node.ports.held.size).toBe(0);
  });

  it('two gangs on one node never get the same port; a port comes free when its attempt ends', () => {
    const node = cpuNode('n1', 8, { first: 31000, last: 31099 });
    const book = new AllocationBook((id) => (id === node.id ? node : undefined));
    const first = placed(placeGang(replicas(3, 'a'), [node], binpack, { minAvailable: 3 }));
    allocateAll(book, first);
    expect([...node.ports.held.keys()].sort()).toEqual([31000, 31001, 31002]);

    const second = placed(placeGang(replicas(2, 'b'), [node], binpack, { minAvailable: 2 }));
    expect(second.placements.map((p) => p.port)).toEqual([31003, 31004]);
    allocateAll(book, second);

    // a1's attempt ends: its assignment goes, and so does its hold on 31001, the next gang's first port.
    book.remove('a1');
    expect(node.ports.held.has(31001)).toBe(false);
    expect(lowestFreePort(node.ports)).toBe(31001);
    const third = placed(placeGang(replicas(2, 'c'), [node], binpack, { minAvailable: 2 }));
    expect(third.placements.map((p) => p.port)).toEqual([31001, 31005]);

    // A restarted master rebuilds the holds from the assignments alone (applyTo a fresh view).
    const fresh = cpuNode('n1', 8, { first: 31000, last: 31099 });
    book.applyTo(fresh);
    expect([...fresh.ports.held.keys()].sort()).toEqual([31000, 31002, 31003, 31004]);
    book.clear();
    expect(node.ports.held.size).toBe(0);
  });

  it('ports held on one node do not limit another: two replicas on two nodes may hold the same port', () => {
    const nodes = [cpuNode('n1', 2, { first: 31000, last: 31009 }), cpuNode('n2', 2, { first: 31000, last: 31009 })];
    const result = placed(placeGang(replicas(4), nodes, binpack, { minAvailable: 4 }));
    expect(result.placements.map((p) => `${p.nodeId}:${p.port}`).sort()).toEqual(['n1:31000', 'n1:31001', 'n2:31000', 'n2:31001']);
  });

  it('a range used up: the gang waits and the reason says ports are what is short; replicas go where ports are free', () => {
    const node = cpuNode('n1', 8, { first: 31000, last: 31002 });
    const book = new AllocationBook((id) => (id === node.id ? node : undefined));
    allocateAll(book, placed(placeGang(replicas(2, 'a'), [node], binpack, { minAvailable: 2 })));
    const waits = placeGang(replicas(3, 'b'), [node], binpack, { minAvailable: 3 });
    expect(isGangPlaced(waits)).toBe(false);
    expect(waits).toEqual({
      reason: "gang waits: 1 of 3 replicas fit now (needs 3); 2 more would fit but for ports: every port of their nodes' --port-range is held",
      fitting: 1,
    });
    // Another node with free ports takes the rest.
    const other = cpuNode('n2', 8, { first: 31000, last: 31002 });
    const result = placed(placeGang(replicas(3, 'b'), [node, other], binpack, { minAvailable: 3 }));
    expect(result.placements.map((p) => `${p.nodeId}:${p.port}`)).toEqual(['n2:31000', 'n2:31001', 'n2:31002']);
  });

  it('a range smaller than the gang, even on an idle cluster: it waits for more nodes, and the reason names the range', () => {
    const node = cpuNode('n1', 8, { first: 31000, last: 31001 });
    const waits = placeGang(replicas(3), [node], binpack, { minAvailable: 3 });
    expect(waits).toEqual({
      reason: "gang waits for more nodes: even with every node idle only 2 of 3 replicas fit (needs 3); 1 more would fit but for ports: their nodes' --port-range is too small",
      fitting: 2,
    });
  });

  it('the port count ignores holds outside the range (the node registered again with another range)', () => {
    const ports = newNodePorts({ first: 100, last: 101 });
    ports.held.set(5, 1);
    ports.held.set(100, 1);
    expect(freePortCount(ports)).toBe(1);
    expect(lowestFreePort(ports)).toBe(101);
  });
});
