import { gpuDeviceId, type GpuDevice } from '../../pkg/model/node.js';
import { formatGpu } from '../../pkg/model/resources.js';
import type { GpuShare, NodeView } from '../api/nodes.js';
import { formatCpu, formatMemory } from '../cli/format.js';
import { watch } from './api.js';
import { fill, h, meter, setWidth } from './dom.js';
import { href } from './router.js';
import { ago, errorBox, jobLink, LiveStatus, type PageContext } from './widgets.js';

/** A colour per job, the same on every GPU it holds. */
function colourOf(jobId: string): string {
  let hash = 0;
  for (const c of jobId) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `s${hash % 5}`;
}

function gpuCell(gpu: GpuDevice, shares: readonly GpuShare[]): HTMLElement {
  const id = gpuDeviceId(gpu);
  const mine = shares.filter((s) => s.device === id);
  const used = mine.reduce((sum, s) => sum + s.gpuMilli, 0);
  const segments = mine.map((s) =>
    setWidth(
      h('a', { href: href(['jobs', s.jobId]), class: colourOf(s.jobId), title: `${s.jobId}: ${formatGpu(s.gpuMilli)} GPU`, 'data-job': s.jobId, 'data-gpu-milli': s.gpuMilli }, formatGpu(s.gpuMilli)),
      s.gpuMilli / 1000,
    ),
  );
  const memory = gpu.memory > 0 ? ` · ${formatMemory(gpu.memory)}` : '';
  return h(
    'div',
    { class: 'gpu', 'data-device': id },
    h('div', { class: 'name', title: gpu.uuid || `index ${gpu.index}` }, `GPU ${gpu.index} · ${gpu.model}${memory}`),
    h('div', { class: 'bar' }, segments),
    h(
      'ul',
      { class: 'holders' },
      mine.map((s) => h('li', null, h('span', { class: `dot ${colourOf(s.jobId)}` }), jobLink(s.jobId), ` ${formatGpu(s.gpuMilli)}`)),
      h('li', { class: 'free' }, used >= 1000 ? 'full' : `free ${formatGpu(1000 - used)}`),
    ),
  );
}

function resourceRow(label: string, used: number, total: number, text: string): HTMLElement {
  return h('div', { class: 'meter-row' }, h('span', null, label), meter(used, total), h('span', { class: 'v' }, text));
}

function nodeCard(node: NodeView): HTMLElement {
  const labels = Object.entries(node.labels).map(([k, v]) => `${k}=${v}`);
  const gpuCapacity = node.gpus.length * 1000;
  return h(
    'div',
    { class: 'panel node', 'data-node': node.id },
    h('h3', null, node.id, h('span', { class: 'sub' }, node.executors.join(', '))),
    h('div', { class: 'meta' }, `${node.hostname} · ${node.version} · registered ${ago(node.registeredAt)}${labels.length > 0 ? ` · ${labels.join(', ')}` : ''}`),
    resourceRow('CPU', node.allocated.cpu, node.capacity.cpu, `${formatCpu(node.allocated.cpu)} / ${formatCpu(node.capacity.cpu)}`),
    resourceRow('Memory', node.allocated.memory, node.capacity.memory, `${formatMemory(node.allocated.memory)} / ${formatMemory(node.capacity.memory)}`),
    gpuCapacity > 0 ? resourceRow('GPU', node.allocated.gpuMilli, gpuCapacity, `${formatGpu(node.allocated.gpuMilli)} / ${formatGpu(gpuCapacity)}`) : null,
    node.gpus.length > 0 ? h('div', { class: 'gpus' }, node.gpus.map((g) => gpuCell(g, node.gpuShares))) : h('p', { class: 'muted' }, 'No GPUs'),
    h('p', { class: 'muted' }, node.jobIds.length === 0 ? 'No jobs' : ['Jobs: ', node.jobIds.flatMap((id, i) => [i > 0 ? ', ' : '', jobLink(id)])]),
  );
}

export function nodesPage({ main, signal }: PageContext): void {
  const live = new LiveStatus();
  const problems = h('div');
  const placement = h('p', { class: 'muted', id: 'placement' });
  const list = h('div', { class: 'nodes' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(main, h('h1', null, 'Nodes', live.el), problems, placement, list);
  watch<NodeView[]>('v1/nodes', signal, {
    ok: () => (live.ok(), fill(problems)),
    error: (err) => (live.failed(err), fill(problems, errorBox(err))),
    data: (nodes) => {
      const leader = nodes[0]?.leader ?? null;
      const policy = nodes[0]?.policy ?? null;
      fill(placement, `Leader: ${leader ?? 'unknown'} · placement policy: ${policy ?? 'unknown'} · ${nodes.length} node${nodes.length === 1 ? '' : 's'}`);
      fill(list, nodes.length === 0 ? h('p', { class: 'muted' }, 'No worker is registered.') : nodes.map(nodeCard));
    },
  });
}
