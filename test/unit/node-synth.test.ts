import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatTraceNodes, synthesizeNodes } from '../../internal/simulate/node-synth.js';
import { parseTraceNodes, type TraceNode } from '../../internal/simulate/trace.js';
import { sharedDir } from '../harness/shared.js';

const base = parseTraceNodes(readFileSync(path.join(sharedDir(), 'traces/openb/openb_node_list_gpu_node.csv'), 'utf8'));

/** Nodes per type (everything but the name). */
function types(nodes: readonly TraceNode[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const n of nodes) {
    const key = `${n.model}|${n.gpus}|${n.cpu}|${n.memory}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

describe('synthesizeNodes', () => {
  it('scales the openb GPU cluster to 5,000 nodes: four whole copies and a seeded draw of 148 distinct nodes, names unique', () => {
    const nodes = synthesizeNodes(base, 5000, 1);
    expect(nodes).toHaveLength(5000);
    expect(new Set(nodes.map((n) => n.id)).size).toBe(5000);
    expect(nodes.slice(0, base.length)).toEqual(base);
    expect(nodes.filter((n) => n.id.endsWith('-r4'))).toHaveLength(5000 - 4 * base.length);
    const scaled = types(nodes);
    for (const [type, count] of types(base)) {
      expect(scaled.get(type)).toBeGreaterThanOrEqual(4 * count);
      expect(scaled.get(type)).toBeLessThanOrEqual(5 * count);
    }
  });

  it('is deterministic by seed, and another seed draws another remainder', () => {
    expect(synthesizeNodes(base, 3000, 7)).toEqual(synthesizeNodes(base, 3000, 7));
    expect(synthesizeNodes(base, 3000, 7)).not.toEqual(synthesizeNodes(base, 3000, 8));
  });

  it('draws distinct base nodes when asked for fewer than the base holds', () => {
    const nodes = synthesizeNodes(base, 100, 3);
    expect(nodes).toHaveLength(100);
    expect(new Set(nodes.map((n) => n.id)).size).toBe(100);
    for (const n of nodes) expect(base).toContainEqual(n);
  });

  it('writes a node CSV the simulator reads back as the same nodes', () => {
    const nodes = synthesizeNodes(base, 1500, 2);
    expect(parseTraceNodes(formatTraceNodes(nodes))).toEqual(nodes);
  });

  it.each([0, 1.5, 10_001])('rejects a count of %s naming --count', (count) => {
    expect(() => synthesizeNodes(base, count, 1)).toThrow(/--count/);
  });
});
