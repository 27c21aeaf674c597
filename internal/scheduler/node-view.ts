import { MILLI_PER_GPU, portRangeOf, type ExecutorKind, type GpuDevice, type PortRange, type Resources } from '../../pkg/model/index.js';
import { newNodePorts } from './ports.js';
import type { NodeView } from './types.js';

export interface NodeDescription {
  id: string;
  capacity: Resources;
  gpus: GpuDevice[];
  labels: Record<string, string>;
  executors: ExecutorKind[];
  /** Absent (an older worker's record): DEFAULT_PORT_RANGE. */
  portRange?: PortRange;
}

/** An empty node: nothing allocated, every device and port free. */
export function newNodeView(node: NodeDescription): NodeView {
  return {
    id: node.id,
    // GPU capacity is what the devices add up to, whatever the node claimed.
    capacity: { cpu: node.capacity.cpu, memory: node.capacity.memory, gpuMilli: node.gpus.length * MILLI_PER_GPU },
    allocated: { cpu: 0, memory: 0, gpuMilli: 0 },
    gpus: node.gpus,
    gpuFree: node.gpus.map(() => MILLI_PER_GPU),
    labels: node.labels,
    executors: node.executors,
    ports: newNodePorts(portRangeOf(node)),
    version: 0,
  };
}

/**
 * Equal for two nodes exactly when everything a policy scores of them is
 * equal: capacity, what is allocated, each device's free share and model.
 * Not the id, labels or executors (feasibility reads those). Many nodes of a
 * cluster are alike (the same machine, empty or filled the same way), so a
 * score cached by this key serves all of them.
 */
export function nodeStateKey(node: NodeView): string {
  const c = node.capacity;
  const a = node.allocated;
  let key = `${c.cpu},${c.memory},${c.gpuMilli},${a.cpu},${a.memory},${a.gpuMilli}`;
  for (let i = 0; i < node.gpus.length; i++) key += `|${node.gpus[i].model}:${node.gpuFree[i]}`;
  return key;
}
