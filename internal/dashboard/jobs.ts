import { JOB_STATES, type Job } from '../../pkg/model/job.js';
import type { QueueUsage } from '../cli/queues.js';
import { call, isAbort, watch } from './api.js';
import { fill, h, table, type Column, type Sort } from './dom.js';
import { href, replaceParams, type Params } from './router.js';
import { errorBox, formatResources, jobLink, LiveStatus, stateBadge, timestamp, type PageContext } from './widgets.js';

export const PAGE_SIZE = 100;

/** The page's filters and sort, as kept in the URL: the API's and `titan list`'s names (state, queue, label, since, array, q). */
interface Filters {
  states: string[];
  queue: string;
  /** KEY=VALUE, comma-separated: a job must carry all of them. */
  labels: string;
  since: string;
  array: string;
  text: string;
  sort: Sort;
  cursor: string;
}

function filtersOf(params: URLSearchParams): Filters {
  const states = (params.get('state') ?? '').split(',').filter((s) => (JOB_STATES as readonly string[]).includes(s));
  return {
    states,
    queue: params.get('queue') ?? '',
    labels: params.get('label') ?? '',
    since: params.get('since') ?? '',
    array: params.get('array') ?? '',
    text: params.get('q') ?? '',
    sort: { key: params.get('sort') ?? 'created', desc: (params.get('dir') ?? 'desc') === 'desc' },
    cursor: params.get('cursor') ?? '',
  };
}

function paramsOf(f: Filters): Params {
  return { state: f.states.join(','), queue: f.queue, label: f.labels, since: f.since, array: f.array, q: f.text, sort: f.sort.key === 'created' && f.sort.desc ? null : f.sort.key, dir: f.sort.desc ? null : 'asc', cursor: f.cursor };
}

/** The API query of the filters (sorting is the page's own: the API lists newest first). */
function queryOf(f: Filters): string {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (f.states.length > 0) query.set('state', f.states.join(','));
  if (f.queue !== '') query.set('queue', f.queue);
  for (const label of f.labels.split(',').map((l) => l.trim()).filter((l) => l !== '')) query.append('label', label);
  if (f.since !== '') query.set('since', f.since);
  if (f.array !== '') query.set('array', f.array);
  if (f.text !== '') query.set('q', f.text);
  if (f.cursor !== '') query.set('cursor', f.cursor);
  return `v1/jobs?${query}`;
}

const COLUMNS: readonly Column<Job>[] = [
  { key: 'id', label: 'ID', cell: (j) => jobLink(j.id), sortBy: (j) => j.id },
  { key: 'name', label: 'Name', cell: (j) => j.name, sortBy: (j) => j.name },
  { key: 'state', label: 'State', cell: (j) => stateBadge(j.state), sortBy: (j) => JOB_STATES.indexOf(j.state) },
  { key: 'queue', label: 'Queue', cell: (j) => j.queue ?? 'default', sortBy: (j) => j.queue ?? 'default' },
  { key: 'node', label: 'Node', cell: (j) => j.node ?? '-', sortBy: (j) => j.node ?? '' },
  { key: 'asks', label: 'Asks', cell: (j) => formatResources(j.resources), sortBy: (j) => j.resources.gpuMilli * 1e12 + j.resources.cpu },
  { key: 'priority', label: 'Priority', numeric: true, cell: (j) => j.priority, sortBy: (j) => j.priority },
  { key: 'attempt', label: 'Attempt', numeric: true, cell: (j) => j.attempt, sortBy: (j) => j.attempt },
  { key: 'created', label: 'Created', cell: (j) => timestamp(j.createdAt), sortBy: (j) => j.createdAt },
  { key: 'reason', label: 'Reason', className: 'reason', cell: (j) => j.reason ?? '' },
];

export function jobsPage({ main, route, signal }: PageContext): void {
  const filters = filtersOf(route.params);
  const live = new LiveStatus();
  const problems = h('div');
  const results = h('div', { id: 'jobs' }, h('p', { class: 'muted' }, 'Loading…'));
  const pager = h('div', { class: 'pager' });
  let latest: { jobs: Job[]; nextCursor: string | null } | undefined;
  let following: AbortController | undefined;

  const render = (): void => {
    if (!latest) return;
    fill(results, table(COLUMNS, latest.jobs, { sort: filters.sort, onSort: (sort) => ((filters.sort = sort), replaceParams(paramsOf(filters)), render()), empty: 'No job matches', rowKey: (j) => j.id }));
    const next = latest.nextCursor;
    fill(
      pager,
      h('span', { class: 'muted' }, `${latest.jobs.length} job${latest.jobs.length === 1 ? '' : 's'}${filters.cursor || next ? ' on this page' : ''}`),
      filters.cursor ? h('a', { href: href(['jobs'], { ...paramsOf(filters), cursor: null }) }, '« First page') : null,
      next ? h('a', { href: href(['jobs'], { ...paramsOf(filters), cursor: next }), id: 'next-page' }, 'Next page »') : null,
    );
  };

  const follow = (): void => {
    following?.abort();
    following = new AbortController();
    const stop = following;
    signal.addEventListener('abort', () => stop.abort(), { once: true });
    watch<{ jobs: Job[]; nextCursor: string | null }>(queryOf(filters), stop.signal, {
      ok: () => (live.ok(), fill(problems)),
      error: (err) => (live.failed(err), fill(problems, errorBox(err))),
      data: (page) => ((latest = page), render()),
    });
  };

  const refilter = (): void => {
    filters.cursor = '';
    replaceParams(paramsOf(filters));
    follow();
  };

  const chips = JOB_STATES.map((state) => {
    const chip = h('button', { type: 'button', class: `chip${filters.states.includes(state) ? ' on' : ''}`, 'data-state': state, 'aria-pressed': String(filters.states.includes(state)) }, state);
    chip.addEventListener('click', () => {
      filters.states = filters.states.includes(state) ? filters.states.filter((s) => s !== state) : [...filters.states, state];
      chip.classList.toggle('on', filters.states.includes(state));
      chip.setAttribute('aria-pressed', String(filters.states.includes(state)));
      refilter();
    });
    return chip;
  });
  const queue = h('select', { id: 'queue-filter', 'aria-label': 'Queue' }, h('option', { value: '' }, 'All queues'), filters.queue ? h('option', { value: filters.queue, selected: true }, filters.queue) : null);
  queue.addEventListener('change', () => ((filters.queue = queue.value), refilter()));
  /** A text filter, applied a moment after typing in it stops; a value the API refuses shows its error. */
  const textFilter = (id: string, key: 'labels' | 'since' | 'array' | 'text', placeholder: string, label: string): HTMLInputElement => {
    const input = h('input', { type: 'search', id, placeholder, 'aria-label': label, value: filters[key] });
    let typing: ReturnType<typeof setTimeout> | undefined;
    input.addEventListener('input', () => {
      clearTimeout(typing);
      typing = setTimeout(() => ((filters[key] = input.value.trim()), refilter()), 250);
    });
    return input;
  };
  const texts = [
    textFilter('label-filter', 'labels', 'label KEY=VALUE', 'Labels'),
    textFilter('since-filter', 'since', 'since (1h, 2d)', 'Created within'),
    textFilter('array-filter', 'array', 'array id', 'Array'),
    textFilter('job-search', 'text', 'Search id or name', 'Search'),
  ];

  fill(main, h('h1', null, 'Jobs', live.el), h('div', { class: 'filters' }, h('div', { class: 'chips', id: 'state-filter' }, chips), queue, ...texts), problems, results, pager);
  follow();

  // The queue names for the picker (once: a new queue shows on the next visit).
  call<QueueUsage[]>('GET', 'v1/queues', signal).then(
    ({ data }) => {
      for (const q of data.map((row) => row.name).sort()) {
        if (q !== filters.queue) queue.append(h('option', { value: q }, q));
      }
    },
    (err: unknown) => {
      if (!isAbort(err)) fill(problems, errorBox(err));
    },
  );
}
