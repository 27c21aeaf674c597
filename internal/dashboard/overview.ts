import { JOB_STATES } from '../../pkg/model/job.js';
import { formatGpu } from '../../pkg/model/resources.js';
import type { Overview } from '../api/overview.js';
import { formatCpu, formatMemory } from '../cli/format.js';
import { watch } from './api.js';
import { fill, h, meter, table } from './dom.js';
import type { NodeView } from '../api/nodes.js';
import { href } from './router.js';
import { errorBox, jobLink, LiveStatus, type PageContext } from './widgets.js';

/** What each kind of pending reason means, in a few words (the kinds of GET /v1/overview). */
const REASON_KIND_TEXT: Record<string, string> = {
  none: 'not looked at yet',
  backoff: 'in retry backoff',
  'no-node': 'no worker registered',
  'never-fits': 'fits no registered node',
  capacity: 'waiting for capacity',
  'queue-limit': 'queue at its limit',
  'array-limit': "its array's %max reached",
  gang: 'gang waiting for all replicas',
  dependency: 'waiting for other jobs to end',
  requeued: 'requeued (evicted, node lost, retried)',
};

function renderJobs(el: HTMLElement, overview: Overview): void {
  const cards = JOB_STATES.map((state) =>
    h(
      'a',
      { class: 'card', href: href(['jobs'], { state }), 'data-state': state },
      h('div', { class: 'n' }, overview.byState[state]),
      h('div', { class: 'l' }, state),
    ),
  );
  const reasons = table(
    [
      { key: 'kind', label: 'Waiting for', cell: (r: Overview['pendingByReason'][number]) => h('span', { title: r.kind }, REASON_KIND_TEXT[r.kind] ?? r.kind) },
      { key: 'count', label: 'Jobs', numeric: true, cell: (r) => r.count },
      { key: 'example', label: 'For example', cell: (r) => (r.example ? [jobLink(r.example.jobId), ' ', h('span', { class: 'muted' }, r.example.reason)] : '-') },
    ],
    overview.pendingByReason,
    { empty: 'No job is pending' },
  );
  const queues = table(
    [
      { key: 'queue', label: 'Queue', cell: (q: Overview['byQueue'][number]) => h('a', { href: href(['jobs'], { queue: q.queue }) }, q.queue) },
      ...JOB_STATES.map((s) => ({ key: s, label: s, numeric: true, cell: (q: Overview['byQueue'][number]) => q.byState[s] })),
    ],
    overview.byQueue,
    { empty: 'No jobs' },
  );
  fill(el, h('div', { class: 'cards', id: 'state-counts' }, cards), h('h2', null, 'Pending jobs by reason'), h('div', { id: 'pending-reasons' }, reasons), h('h2', null, 'Jobs by queue'), queues);
}

function renderCluster(el: HTMLElement, nodes: readonly NodeView[]): void {
  const sum = (f: (n: NodeView) => number): number => nodes.reduce((s, n) => s + f(n), 0);
  const gpuCapacity = sum((n) => n.gpus.length * 1000);
  const row = (label: string, used: number, total: number, text: string) =>
    h('div', { class: 'meter-row' }, h('span', null, label), meter(used, total), h('span', { class: 'v' }, text));
  const leader = nodes[0]?.leader ?? null;
  const policy = nodes[0]?.policy ?? null;
  fill(
    el,
    h(
      'div',
      { class: 'panel' },
      h('p', { class: 'muted' }, `${nodes.length} node${nodes.length === 1 ? '' : 's'} · leader ${leader ?? 'unknown'} · placement policy ${policy ?? 'unknown'} · `, h('a', { href: href(['nodes']) }, 'nodes')),
      row('CPU', sum((n) => n.allocated.cpu), sum((n) => n.capacity.cpu), `${formatCpu(sum((n) => n.allocated.cpu))} / ${formatCpu(sum((n) => n.capacity.cpu))}`),
      row('Memory', sum((n) => n.allocated.memory), sum((n) => n.capacity.memory), `${formatMemory(sum((n) => n.allocated.memory))} / ${formatMemory(sum((n) => n.capacity.memory))}`),
      gpuCapacity > 0 ? row('GPU', sum((n) => n.allocated.gpuMilli), gpuCapacity, `${formatGpu(sum((n) => n.allocated.gpuMilli))} / ${formatGpu(gpuCapacity)}`) : null,
    ),
  );
}

export function overviewPage({ main, signal }: PageContext): void {
  const live = new LiveStatus();
  const problems = h('div');
  const jobs = h('section', null, h('p', { class: 'muted' }, 'Loading…'));
  const cluster = h('section');
  fill(main, h('h1', null, 'Overview', live.el), problems, jobs, h('h2', null, 'Cluster'), cluster);
  const handlers = { ok: () => (live.ok(), fill(problems)), error: (err: Error) => (live.failed(err), fill(problems, errorBox(err))) };
  watch<Overview>('v1/overview', signal, { ...handlers, data: (o) => renderJobs(jobs, o) });
  watch<NodeView[]>('v1/nodes', signal, { ...handlers, data: (n) => renderCluster(cluster, n) });
}

