import type { PortRange } from '../../pkg/model/index.js';

/**
 * A node's ports as the scheduler sees them: the range it offers gang
 * replicas (its --port-range) and the ports its allocations hold. Each gang
 * replica holds one port while its assignment exists, like its CPU and
 * devices, so the ports are rebuilt from assignments with the rest
 * (AllocationBook) and two replicas on one node never get the same one.
 */
export interface NodePorts {
  readonly first: number;
  readonly last: number;
  /** Port → how many allocations hold it (one, unless records were written around Titan). */
  readonly held: Map<number, number>;
}

export function newNodePorts(range: PortRange): NodePorts {
  return { first: range.first, last: range.last, held: new Map() };
}

/** A copy a plan may change: the node's own is never touched by a trial. */
export function copyPorts(ports: NodePorts): NodePorts {
  return { first: ports.first, last: ports.last, held: new Map(ports.held) };
}

/** How many ports of the range no allocation holds. */
export function freePortCount(ports: NodePorts): number {
  let size = Math.max(0, ports.last - ports.first + 1);
  // A port held outside the range (the node registered again with another range) takes nothing from it.
  for (const port of ports.held.keys()) if (port >= ports.first && port <= ports.last) size--;
  return size;
}

/** The lowest port of the range no allocation holds, so placements are predictable; undefined when all are held. */
export function lowestFreePort(ports: NodePorts): number | undefined {
  for (let port = ports.first; port <= ports.last; port++) if (!ports.held.has(port)) return port;
  return undefined;
}

export function holdPort(ports: NodePorts, port: number): void {
  ports.held.set(port, (ports.held.get(port) ?? 0) + 1);
}

export function releasePort(ports: NodePorts, port: number): void {
  const count = ports.held.get(port) ?? 0;
  if (count <= 1) ports.held.delete(port);
  else ports.held.set(port, count - 1);
}
