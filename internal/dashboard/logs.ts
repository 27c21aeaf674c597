import { isFinal } from '../../pkg/model/job.js';
import { ApiError, call, eventStream, isAbort, type StreamEvent } from './api.js';
import { fill, h } from './dom.js';
import type { JobDetail } from './job.js';
import { href, replaceParams } from './router.js';
import { errorBox, LiveStatus, stateBadge, type PageContext } from './widgets.js';

/** One piece of output, as a `log` event of GET /v1/jobs/:id/logs carries it (internal/api/logs.ts). */
interface LogEntry {
  stream: 'stdout' | 'stderr';
  data: string;
}

interface LogEvent {
  attempt: number;
  seq: number;
  entries: LogEntry[];
}

/** The `end` event: the job's state, and the followed attempt's own end when it is an earlier one. */
interface LogEnd {
  state: string;
  exitCode: number | null;
  attemptState?: string;
  attemptExitCode?: number | null;
}

/** Most spans kept on screen; older output scrolls away (the whole log is one `titan logs` away). */
const MAX_SPANS = 5000;
const RECONNECT_MS = 2000;

/** The output pane: consecutive pieces of one stream share a span; stdout or stderr can be hidden. */
class LogView {
  readonly el = h('pre', { class: 'log', id: 'log-output', 'aria-live': 'polite' });
  private last: HTMLElement | undefined;

  append(entry: LogEntry): void {
    if (this.last?.dataset.stream === entry.stream) this.last.append(entry.data);
    else {
      this.last = h('span', { class: entry.stream, 'data-stream': entry.stream }, entry.data);
      this.el.append(this.last);
      if (this.el.childElementCount > MAX_SPANS) this.el.firstElementChild?.remove();
    }
  }

  /** A line from the server about the stream itself (a new attempt started, output was cut), set apart from the output. */
  notice(message: string): void {
    this.last = undefined;
    this.el.append(h('span', { class: 'notice' }, `— ${message} —\n`));
  }

  clear(): void {
    this.el.replaceChildren();
    this.last = undefined;
  }

  show(stream: 'stdout' | 'stderr', on: boolean): void {
    this.el.classList.toggle(`hide-${stream}`, !on);
  }
}

export function logsPage({ main, route, signal }: PageContext): void {
  const id = route.path[1];
  const params = route.params;
  let attempt = Number(params.get('attempt') ?? '0') || 0;
  /** The job's latest attempt when the page opened: following it, the stream moves on to the attempts after it too. */
  let latest = 0;
  let follow = params.get('follow') !== '0';
  const shown = { stdout: params.get('stdout') !== '0', stderr: params.get('stderr') !== '0' };
  const live = new LiveStatus();
  const problems = h('div');
  const ended = h('div', { class: 'log-end', id: 'log-end' });
  const view = new LogView();
  const picker = h('select', { id: 'attempt-picker', 'aria-label': 'Attempt' });
  const keepParams = (): void =>
    replaceParams({ attempt: attempt > 0 ? String(attempt) : null, follow: follow ? null : '0', stdout: shown.stdout ? null : '0', stderr: shown.stderr ? null : '0' });

  const toggle = (label: string, checked: boolean, onChange: (on: boolean) => void, idAttr: string): HTMLElement => {
    const box = h('input', { type: 'checkbox', id: idAttr, checked });
    box.addEventListener('change', () => onChange(box.checked));
    return h('label', null, box, ` ${label}`);
  };

  let reading: AbortController | undefined;
  /**
   * Reads the chosen attempt's log from the start; with follow, until its
   * `end` event (reconnecting with Last-Event-ID). The latest attempt is
   * asked for without `attempt`, so a retry's output follows it (a notice
   * marks where).
   */
  const read = (): void => {
    reading?.abort();
    const stop = (reading = new AbortController());
    signal.addEventListener('abort', () => stop.abort(), { once: true });
    view.clear();
    fill(ended);
    void (async () => {
      let lastEventId: string | undefined;
      const pinned = attempt > 0 && !(follow && attempt === latest);
      const query = `v1/jobs/${encodeURIComponent(id)}/logs?${new URLSearchParams({ ...(pinned ? { attempt: String(attempt) } : {}), ...(follow ? { follow: '1' } : {}) })}`;
      while (!stop.signal.aborted) {
        try {
          for await (const event of eventStream(query, stop.signal, lastEventId)) {
            live.ok();
            fill(problems);
            if (!handle(event)) return;
            if (event.id !== undefined) lastEventId = event.id;
          }
          if (!follow) return;
        } catch (err) {
          if (stop.signal.aborted || isAbort(err)) return;
          live.failed(err instanceof Error ? err : new Error(String(err)));
          fill(problems, errorBox(err));
          if (err instanceof ApiError && err.status < 500) return;
        }
        await new Promise((r) => setTimeout(r, RECONNECT_MS));
      }
    })();
  };

  /** Shows one event; false when the stream is over. */
  const handle = (event: StreamEvent): boolean => {
    const data: unknown = event.data === '' ? null : JSON.parse(event.data);
    switch (event.event) {
      case 'end': {
        const end = data as LogEnd;
        const state = end.attemptState ?? end.state;
        const exitCode = end.attemptState !== undefined ? end.attemptExitCode : end.exitCode;
        fill(ended, 'Attempt ended: ', stateBadge(state), exitCode !== undefined && exitCode !== null ? ` exit code ${exitCode}` : '', state !== end.state ? [' · the job is now ', stateBadge(end.state)] : '');
        return false;
      }
      case 'error': {
        const body = data as { error?: { code?: string; message?: string } };
        fill(problems, errorBox(new ApiError(0, body.error?.code ?? 'Unavailable', body.error?.message ?? 'the log stream failed')));
        return true;
      }
      case 'notice':
        view.notice((data as { message: string }).message);
        return true;
      case 'log':
        for (const entry of (data as LogEvent).entries) view.append(entry);
        if (follow) view.el.scrollTop = view.el.scrollHeight;
        return true;
      default:
        return true;
    }
  };

  picker.addEventListener('change', () => {
    attempt = Number(picker.value);
    keepParams();
    read();
  });
  view.show('stdout', shown.stdout);
  view.show('stderr', shown.stderr);
  fill(
    main,
    h('h1', null, h('a', { href: href(['jobs']) }, 'Jobs'), h('span', { class: 'sep' }, '›'), h('a', { href: href(['jobs', id]), class: 'mono' }, id), h('span', { class: 'sep' }, '›'), h('span', null, 'Logs'), live.el),
    h(
      'div',
      { class: 'logbar' },
      h('label', null, 'Attempt ', picker),
      toggle('stdout', shown.stdout, (on) => ((shown.stdout = on), view.show('stdout', on), keepParams()), 'show-stdout'),
      toggle('stderr', shown.stderr, (on) => ((shown.stderr = on), view.show('stderr', on), keepParams()), 'show-stderr'),
      toggle('follow', follow, (on) => ((follow = on), keepParams(), read()), 'follow'),
    ),
    problems,
    view.el,
    ended,
  );

  // The attempts to pick from: the job's, once (a new attempt shows on the next visit or a new pick).
  call<JobDetail>('GET', `v1/jobs/${encodeURIComponent(id)}`, signal).then(
    ({ data: job }) => {
      latest = job.attempt;
      if (attempt === 0) attempt = job.attempt;
      const options = Array.from({ length: Math.max(job.attempt, 1) }, (_, i) => job.attempt - i).filter((n) => n > 0);
      fill(picker, options.length === 0 ? h('option', { value: '0' }, 'not started') : options.map((n) => h('option', { value: String(n), selected: n === attempt }, `#${n}${n === job.attempt && !isFinal(job.state) ? ' (current)' : ''}`)));
      keepParams();
      read();
    },
    (err: unknown) => {
      if (!isAbort(err)) fill(problems, errorBox(err));
    },
  );
}
