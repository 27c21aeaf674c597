import type { ResourceLimit } from '../../pkg/model/queue.js';
import { formatGpu, type Resources } from '../../pkg/model/resources.js';
import { formatCpu, formatMemory } from '../cli/format.js';
import type { QueueUsage } from '../cli/queues.js';
import { watch } from './api.js';
import { fill, h, table, type Child } from './dom.js';
import { href } from './router.js';
import { errorBox, LiveStatus, type PageContext } from './widgets.js';

/** "2 CPU · 4Gi · 1 GPU" of the dimensions given ("-" when none is): a limit's capped ones, a quota's or usage's above zero. */
function amounts(r: Partial<Resources> | null): string {
  if (!r) return '-';
  const parts = [
    r.cpu !== undefined ? `${formatCpu(r.cpu)} CPU` : '',
    r.memory !== undefined ? formatMemory(r.memory) : '',
    r.gpuMilli !== undefined ? `${formatGpu(r.gpuMilli)} GPU` : '',
  ].filter((p) => p !== '');
  return parts.length === 0 ? '-' : parts.join(' · ');
}

function nonZero(r: Resources): Partial<Resources> {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== 0));
}

interface Row {
  queue: QueueUsage;
  depth: number;
}

/** Parents first, each followed by its children, by name; a child whose parent is not listed shows at the top level. */
function treeOrder(queues: readonly QueueUsage[]): Row[] {
  const names = new Set(queues.map((q) => q.name));
  const children = new Map<string | null, QueueUsage[]>();
  for (const q of queues) {
    const parent = q.parent !== null && names.has(q.parent) ? q.parent : null;
    const list = children.get(parent) ?? [];
    list.push(q);
    children.set(parent, list);
  }
  const rows: Row[] = [];
  const visit = (parent: string | null, depth: number): void => {
    for (const q of [...(children.get(parent) ?? [])].sort((a, b) => a.name.localeCompare(b.name))) {
      rows.push({ queue: q, depth });
      visit(q.name, depth + 1);
    }
  };
  visit(null, 0);
  return rows;
}

function nameCell({ queue, depth }: Row): Child {
  const marks = [queue.implicit ? 'implicit' : '', queue.missing ? 'deleted, still used' : ''].filter((m) => m !== '');
  return [
    Array.from({ length: depth }, () => h('span', { class: 'tree-indent' })),
    depth > 0 ? '└ ' : '',
    h('a', { href: href(['jobs'], { queue: queue.name }) }, queue.name),
    marks.length > 0 ? h('span', { class: 'muted' }, ` (${marks.join(', ')})`) : '',
  ];
}

export function queuesPage({ main, signal }: PageContext): void {
  const live = new LiveStatus();
  const problems = h('div');
  const body = h('div', { id: 'queues' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(main, h('h1', null, 'Queues', live.el), problems, body);
  watch<QueueUsage[]>('v1/queues', signal, {
    ok: () => (live.ok(), fill(problems)),
    error: (err) => (live.failed(err), fill(problems, errorBox(err))),
    data: (queues) =>
      fill(
        body,
        table(
          [
            { key: 'name', label: 'Queue', cell: nameCell },
            { key: 'quota', label: 'Quota', cell: (r: Row) => amounts(nonZero(r.queue.quota)) },
            { key: 'limit', label: 'Limit', cell: (r: Row) => amounts(r.queue.limit as ResourceLimit | null) },
            { key: 'allocated', label: 'Allocated', cell: (r: Row) => amounts(nonZero(r.queue.allocated)) },
            { key: 'running', label: 'Running', numeric: true, cell: (r: Row) => r.queue.running },
            { key: 'pending', label: 'Pending', numeric: true, cell: (r: Row) => r.queue.pending },
            { key: 'pendingRequest', label: 'Pending asks', cell: (r: Row) => (r.queue.pending > 0 ? amounts(nonZero(r.queue.pendingRequest)) : '-') },
            { key: 'weight', label: 'Weight', numeric: true, cell: (r: Row) => r.queue.weight },
            { key: 'fairShare', label: 'Fair share', cell: (r: Row) => amounts(nonZero(r.queue.fairShare)) },
          ],
          treeOrder(queues),
          { empty: 'No queues', rowKey: (r) => r.queue.name },
        ),
      ),
  });
}
