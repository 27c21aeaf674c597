import { invalidInput } from '../../pkg/model/index.js';
import { seededRandom } from './protocol.js';
import { formatTraceTable, type TraceNode } from './trace.js';

const MiB = 2 ** 20;

/** The columns of an openb node list, as parseTraceNodes reads them. */
const NODE_COLUMNS = ['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model'] as const;

/** Most nodes a synthesized list may hold (the protocol names nodes by a four-digit rank). */
export const MAX_SYNTH_NODES = 10_000;

/**
 * A cluster of `count` nodes made from a base node list, to measure
 * placement on clusters larger (or smaller) than any trace's. Every base
 * node is copied whole as often as fits, and the remainder is a seeded draw
 * of distinct base nodes, so each node type (model, GPUs, CPU, memory) keeps
 * its share of the base within one node per copy round: the cluster is the
 * base's, scaled. The first copy of a node keeps its name; later copies are
 * named `NAME-rK`. Fewer nodes than the base is a seeded draw without
 * replacement. The same base, count and seed give the same list.
 */
export function synthesizeNodes(base: readonly TraceNode[], count: number, seed: number): TraceNode[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_SYNTH_NODES) {
    throw invalidInput('--count', `must be a whole number from 1 to ${MAX_SYNTH_NODES}`);
  }
  if (base.length === 0) throw invalidInput('--base', 'holds no nodes');
  const rounds = Math.floor(count / base.length);
  const picked: { node: TraceNode; copy: number }[] = [];
  for (let copy = 0; copy < rounds; copy++) for (const node of base) picked.push({ node, copy });
  // The remainder: a partial Fisher-Yates shuffle of the base's indexes, kept in base order.
  const random = seededRandom(seed);
  const order = base.map((_, i) => i);
  const rest = count - rounds * base.length;
  for (let i = 0; i < rest; i++) {
    const j = i + Math.floor(random() * (order.length - i));
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (const i of order.slice(0, rest).sort((a, b) => a - b)) picked.push({ node: base[i], copy: rounds });
  const names = new Set<string>();
  return picked.map(({ node, copy }) => {
    const id = copy === 0 ? node.id : `${node.id}-r${copy}`;
    if (names.has(id)) throw invalidInput('--base', `node name ${id} occurs twice in the synthesized list: rename the base's nodes`);
    names.add(id);
    return { ...node, id };
  });
}

/** A node list as an openb node CSV (`sn,cpu_milli,memory_mib,gpu,model`), which parseTraceNodes reads back. */
export function formatTraceNodes(nodes: readonly TraceNode[]): string {
  return formatTraceTable(
    NODE_COLUMNS,
    nodes.map((n) => ({ sn: n.id, cpu_milli: String(n.cpu), memory_mib: String(Math.round(n.memory / MiB)), gpu: String(n.gpus), model: n.model })),
  );
}
