import { isFinal, JOB_STATES, type AttemptRecord, type JobSpec } from '../../pkg/model/job.js';
import type { ArrayStatusDocument } from '../cli/arrays.js';
import { formatCommand, formatDuration } from '../cli/format.js';
import type { GangReplicaView, JobStatusView } from '../cli/jobs.js';
import { call, watch } from './api.js';
import { fill, h, table, type Child } from './dom.js';
import { href } from './router.js';
import { errorBox, formatResources, jobLink, LiveStatus, stateBadge, timestamp, type PageContext, type Session } from './widgets.js';

export type JobDetail = JobStatusView & { replicas?: GangReplicaView[] };

/** The spec fields, as submitted (what `titan submit -f` would take back, in the stored form). */
const SPEC_FIELDS: readonly (keyof JobSpec)[] = [
  'name', 'kind', 'image', 'command', 'env', 'resources', 'priority', 'labels', 'retries', 'timeoutMs',
  'gpuModels', 'nodeSelector', 'queue', 'preemptible', 'minRuntimeMs', 'gang', 'array', 'after',
];

/**
 * A pending job's place in its queue, as the scheduling pass writes it at the
 * end of a capacity reason ("; #3 in queue team-a", "#100+" past the head;
 * internal/scheduler/pass.ts), or "first in line" when a node is reserved for it.
 */
export function queuePosition(reason: string | null): string | undefined {
  if (reason === null) return undefined;
  const numbered = /; #(\d+\+?) in queue (\S+)$/.exec(reason);
  if (numbered) return `#${numbered[1]} in queue ${numbered[2]}`;
  if (reason.includes('; first in line:')) return 'first in line (a node is reserved for it)';
  return undefined;
}

/** One row per attempt: the finished ones from the history, then the current one while it is not there yet. */
interface AttemptRow {
  attempt: number;
  node?: string;
  gpuDevices?: string[];
  state: string;
  exitCode?: number;
  reason?: string;
  startedAt?: number;
  finishedAt?: number;
}

function attemptRows(job: JobDetail): AttemptRow[] {
  const rows: AttemptRow[] = (job.history ?? []).map((a: AttemptRecord) => ({
    attempt: a.attempt,
    node: a.node,
    state: a.state,
    exitCode: a.exitCode,
    reason: a.reason ?? a.failure,
    startedAt: a.startedAt,
    finishedAt: a.finishedAt,
  }));
  const current = rows.find((r) => r.attempt === job.attempt);
  if (current) current.gpuDevices = job.gpuDevices;
  else if (job.attempt > 0) {
    rows.push({ attempt: job.attempt, node: job.node ?? undefined, gpuDevices: job.gpuDevices, state: job.state, exitCode: job.exitCode ?? undefined, reason: job.reason ?? undefined, startedAt: job.startedAt, finishedAt: job.finishedAt });
  }
  return rows.sort((a, b) => b.attempt - a.attempt);
}

function field(label: string, value: Child): Child[] {
  return [h('dt', null, label), h('dd', null, value)];
}

/** Cancel and retry, greyed out when the token's role cannot (the API refuses anyway) or the state does not allow. */
function actions(job: JobDetail, session: Session, report: (message: Child) => void): HTMLElement {
  const canWrite = session.can('submit');
  const denied = canWrite ? null : `a ${session.who.role} token cannot change jobs`;
  const bar = h('div', { class: 'actions' });
  const act = (verb: 'cancel' | 'retry'): void => {
    for (const b of bar.querySelectorAll('button')) b.disabled = true;
    call<unknown>('POST', `v1/jobs/${encodeURIComponent(job.id)}/${verb}`).then(
      () => report(h('span', { class: 'muted' }, verb === 'cancel' ? 'Cancel requested.' : 'Back in the queue.')),
      (err: unknown) => report(errorBox(err)),
    );
  };
  const confirmThen = (verb: 'cancel' | 'retry', label: string): void => {
    fill(
      bar,
      h('span', null, `${label}?`),
      h('button', { type: 'button', class: verb === 'cancel' ? 'danger' : 'primary', id: `confirm-${verb}`, onclick: () => act(verb) }, `Yes, ${verb}`),
      h('button', { type: 'button', onclick: () => fill(bar, ...buttons()) }, 'No'),
    );
  };
  const buttons = (): HTMLElement[] => [
    h('button', { type: 'button', id: 'cancel-job', class: 'danger', disabled: !canWrite || isFinal(job.state), title: denied ?? (isFinal(job.state) ? 'the job has ended' : null), onclick: () => confirmThen('cancel', 'Cancel this job') }, 'Cancel'),
    h('button', { type: 'button', id: 'retry-job', disabled: !canWrite || !(job.state === 'Failed' || job.state === 'Cancelled'), title: denied ?? 'only a Failed or Cancelled job is retried', onclick: () => confirmThen('retry', 'Put it back in the queue') }, 'Retry'),
    h('a', { href: href(['jobs', job.id, 'logs'], { attempt: job.attempt > 0 ? String(job.attempt) : null }), id: 'logs-link' }, 'Logs'),
  ];
  fill(bar, ...buttons());
  return bar;
}

/** `ok:a,b any:c` with each job a link (an array's id links to the array). */
function waitsFor(after: NonNullable<JobSpec['after']>): Child[] {
  return after.flatMap((d, i) => [i > 0 ? ' ' : '', `${d.condition}:`, ...d.jobs.flatMap((id, k) => [k > 0 ? ',' : '', jobLink(id)])]);
}

function render(el: HTMLElement, job: JobDetail): void {
  const position = job.state === 'Pending' ? queuePosition(job.reason) : undefined;
  const spec = Object.fromEntries(SPEC_FIELDS.filter((k) => job[k] !== undefined).map((k) => [k, job[k]]));
  fill(
    el,
    h('div', { class: 'grid2' },
      h('div', { class: 'panel' },
        h('dl', { class: 'fields' },
          field('State', stateBadge(job.state)),
          job.reason !== null ? field(job.state === 'Pending' ? 'Pending reason' : 'Reason', h('div', { class: 'reason-text', id: 'job-reason' }, job.reason)) : [],
          position ? field('Position', h('span', { id: 'queue-position' }, position)) : [],
          field('Queue', job.queue ?? 'default'),
          field('Node', job.node ?? '-'),
          field('GPU devices', job.gpuDevices && job.gpuDevices.length > 0 ? h('span', { class: 'mono' }, job.gpuDevices.join(', ')) : '-'),
          field('Attempt', String(job.attempt)),
          field('Exit code', job.exitCode === null ? '-' : String(job.exitCode)),
          field('Created', timestamp(job.createdAt)),
          field('Started', timestamp(job.startedAt)),
          field('Finished', timestamp(job.finishedAt)),
          job.cancelReason ? field('Cancelled because', job.cancelReason) : [],
          job.array ? field('Array', h('span', { id: 'job-array' }, jobLink(job.array.id), ` task ${job.array.index} of ${job.array.count}`)) : [],
          job.after ? field('Waits for', h('span', { id: 'job-after' }, ...waitsFor(job.after))) : [],
        ),
      ),
      h('div', { class: 'panel' },
        h('dl', { class: 'fields' },
          field('Kind', job.kind),
          job.image ? field('Image', h('span', { class: 'mono' }, job.image)) : [],
          field('Command', h('span', { class: 'mono' }, job.command.length > 0 ? formatCommand(job.command) : '(image default)')),
          field('Asks', formatResources(job.resources)),
          field('Priority', String(job.priority)),
          job.timeoutMs !== undefined ? field('Timeout', formatDuration(job.timeoutMs)) : [],
          field('Retries', `${job.failureCount ?? 0} of ${job.retries ?? 0} used`),
        ),
      ),
    ),
    job.replicas ? [h('h2', null, `Gang ${job.gang?.id ?? ''}`), table(
      [
        { key: 'rank', label: 'Rank', numeric: true, cell: (r: GangReplicaView) => r.rank },
        { key: 'id', label: 'Job', cell: (r: GangReplicaView) => jobLink(r.id) },
        { key: 'state', label: 'State', cell: (r: GangReplicaView) => stateBadge(r.state) },
        { key: 'node', label: 'Node', cell: (r: GangReplicaView) => r.node ?? '-' },
      ],
      job.replicas,
    )] : null,
    h('h2', null, 'Attempts'),
    table(
      [
        { key: 'attempt', label: '#', numeric: true, cell: (a: AttemptRow) => a.attempt },
        { key: 'node', label: 'Node', cell: (a: AttemptRow) => a.node ?? '-' },
        { key: 'gpus', label: 'GPU devices', cell: (a: AttemptRow) => (a.gpuDevices && a.gpuDevices.length > 0 ? h('span', { class: 'mono' }, a.gpuDevices.join(', ')) : '-') },
        { key: 'state', label: 'Ended as', cell: (a: AttemptRow) => stateBadge(a.state) },
        { key: 'exit', label: 'Exit', numeric: true, cell: (a: AttemptRow) => (a.exitCode === undefined ? '-' : a.exitCode) },
        { key: 'reason', label: 'Reason', className: 'reason', cell: (a: AttemptRow) => a.reason ?? '' },
        { key: 'started', label: 'Started', cell: (a: AttemptRow) => timestamp(a.startedAt) },
        { key: 'took', label: 'Took', cell: (a: AttemptRow) => (a.startedAt !== undefined && a.finishedAt !== undefined ? formatDuration(a.finishedAt - a.startedAt) : '-') },
        { key: 'logs', label: '', cell: (a: AttemptRow) => h('a', { href: href(['jobs', job.id, 'logs'], { attempt: String(a.attempt) }) }, 'logs') },
      ],
      attemptRows(job),
      { empty: 'Not placed yet', rowKey: (a) => String(a.attempt) },
    ),
    h('h2', null, 'Spec'),
    h('pre', { class: 'json', id: 'job-spec' }, JSON.stringify(spec, null, 2)),
  );
}

/** A whole array (the API answers an array's id with its tasks per state): counts that link to the tasks, and its actions. */
function renderArray(el: HTMLElement, array: ArrayStatusDocument): void {
  const tasksIn = (state?: string): string => href(['jobs'], { array: array.id, state: state ?? null });
  fill(
    el,
    h('div', { class: 'grid2' },
      h('div', { class: 'panel' },
        h('dl', { class: 'fields' },
          field('Tasks', h('a', { href: tasksIn(), id: 'array-tasks' }, String(array.count))),
          field('At once', array.max === null ? 'no limit' : `at most ${array.max} (%${array.max})`),
          field('Queue', array.queue),
          field('Created', timestamp(array.createdAt)),
          field('Failed indexes', h('span', { class: 'mono', id: 'array-failed' }, array.failedIndexes.length > 0 ? array.failedIndexes.join(',') : '-')),
        ),
      ),
      h('div', { class: 'panel' },
        h('dl', { class: 'fields', id: 'array-states' },
          JOB_STATES.map((state) => field(state, h('a', { href: tasksIn(state), 'data-state': state }, String(array.tasks[state] ?? 0)))),
        ),
      ),
    ),
  );
}

/** Cancel the tasks that have not ended; put the Failed ones back (as titan cancel ID and titan retry ID --failed). */
function arrayActions(array: ArrayStatusDocument, session: Session, report: (message: Child) => void): HTMLElement {
  const canWrite = session.can('submit');
  const denied = canWrite ? null : `a ${session.who.role} token cannot change jobs`;
  const ended = (array.tasks.Pending ?? 0) + (array.tasks.Scheduled ?? 0) + (array.tasks.Running ?? 0) === 0;
  const post = (path: string, done: string): void => {
    call<unknown>('POST', path).then(() => report(h('span', { class: 'muted' }, done)), (err: unknown) => report(errorBox(err)));
  };
  const id = encodeURIComponent(array.id);
  return h('div', { class: 'actions' },
    h('button', { type: 'button', id: 'cancel-array', class: 'danger', disabled: !canWrite || ended, title: denied ?? (ended ? 'every task has ended' : null), onclick: () => post(`v1/jobs/${id}/cancel`, 'Cancel requested for the tasks that have not ended.') }, 'Cancel tasks'),
    h('button', { type: 'button', id: 'retry-failed', disabled: !canWrite || array.failedIndexes.length === 0, title: denied ?? 'only Failed tasks are retried', onclick: () => post(`v1/jobs/${id}/retry?failed=1`, 'The failed tasks are back in the queue.') }, 'Retry failed'),
  );
}

export function jobPage({ main, route, signal, session }: PageContext): void {
  const id = route.path[1];
  const live = new LiveStatus();
  const problems = h('div');
  const outcome = h('div');
  const title = h('span', null, id);
  const bar = h('div', { class: 'title-actions' });
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const report = (message: Child): void => fill(outcome, message);
  fill(main, h('h1', null, h('a', { href: href(['jobs']) }, 'Jobs'), h('span', { class: 'sep' }, '›'), title, live.el, bar), problems, outcome, body);
  watch<JobDetail | ArrayStatusDocument>(`v1/jobs/${encodeURIComponent(id)}`, signal, {
    ok: () => (live.ok(), fill(problems)),
    error: (err) => (live.failed(err), fill(problems, errorBox(err))),
    data: (doc) => {
      fill(title, doc.name ? `${doc.name} ` : '', h('span', { class: 'sub mono' }, doc.id), 'failedIndexes' in doc ? h('span', { class: 'sub' }, ' (array)') : '');
      if ('failedIndexes' in doc) {
        fill(bar, arrayActions(doc, session, report));
        renderArray(body, doc);
        return;
      }
      fill(bar, actions(doc, session, report));
      render(body, doc);
    },
  });
}
