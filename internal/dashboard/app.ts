import type { Whoami } from '../api/whoami.js';
import { ApiError, call, forgetToken, saveToken, savedToken, whenUnauthenticated } from './api.js';
import { fill, h } from './dom.js';
import { jobPage } from './job.js';
import { jobsPage } from './jobs.js';
import { logsPage } from './logs.js';
import { nodesPage } from './nodes.js';
import { overviewPage } from './overview.js';
import { queuesPage } from './queues.js';
import { currentRoute, href, type Route } from './router.js';
import { errorBox, type Page, type Session } from './widgets.js';

const root = document.getElementById('app') as HTMLElement;

const NAV: readonly { path: string; label: string }[] = [
  { path: '', label: 'Overview' },
  { path: 'jobs', label: 'Jobs' },
  { path: 'nodes', label: 'Nodes' },
  { path: 'queues', label: 'Queues' },
];

function pageOf(route: Route): { page: Page; section: string } | undefined {
  const [first = '', second, third] = route.path;
  if (first === '' && second === undefined) return { page: overviewPage, section: '' };
  if (first === 'jobs' && second === undefined) return { page: jobsPage, section: 'jobs' };
  if (first === 'jobs' && second !== undefined && third === undefined) return { page: jobPage, section: 'jobs' };
  if (first === 'jobs' && second !== undefined && third === 'logs' && route.path.length === 3) return { page: logsPage, section: 'jobs' };
  if (first === 'nodes' && second === undefined) return { page: nodesPage, section: 'nodes' };
  if (first === 'queues' && second === undefined) return { page: queuesPage, section: 'queues' };
  return undefined;
}

function sessionOf(who: Whoami): Session {
  return { who, can: (permission) => who.permissions.includes(permission) };
}

let leave: AbortController | undefined;

function showLogin(message?: string): void {
  leave?.abort();
  const input = h('input', { type: 'password', name: 'token', id: 'token', autocomplete: 'off', spellcheck: 'false', placeholder: 'titan_…', required: true });
  const error = h('div');
  const button = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h(
    'form',
    {
      // Never sent: the token goes to sessionStorage and an Authorization header, not into a URL.
      onsubmit: (event: Event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (token === '') return;
        button.disabled = true;
        saveToken(token);
        void login().catch((err: unknown) => {
          if (err instanceof ApiError && err.status === 401) return; // whenUnauthenticated shows the form again, with why
          forgetToken();
          button.disabled = false;
          fill(error, errorBox(err));
        });
      },
    },
    h('label', { for: 'token' }, 'API token'),
    input,
    button,
    h('p', null, 'Ask an admin for one: ', h('code', null, 'titan token create --role reader'), '. It is kept in this tab only.'),
  );
  fill(root, h('div', { class: 'login panel' }, h('h1', null, 'Titan'), message ? errorBox(message) : null, error, form));
  input.focus();
}

async function login(): Promise<void> {
  const { data: who } = await call<Whoami>('GET', 'v1/whoami');
  showApp(sessionOf(who));
}

function showApp(session: Session): void {
  const main = h('main');
  const links = NAV.map((n) => h('a', { href: href(n.path === '' ? [] : [n.path]), 'data-section': n.path }, n.label));
  const logout = h(
    'button',
    {
      type: 'button',
      onclick: () => {
        forgetToken();
        location.hash = '';
        showLogin();
      },
    },
    'Log out',
  );
  const who = h('span', { class: 'who', 'data-role': session.who.role }, h('b', null, session.who.name || session.who.id), ` · ${session.who.role}`, session.who.queues ? ` · queues ${session.who.queues.join(', ')}` : '');
  fill(root, h('header', { class: 'top' }, h('a', { class: 'brand', href: href([]) }, 'Titan'), h('nav', null, links), who, logout), main);

  const mount = (): void => {
    leave?.abort();
    leave = new AbortController();
    const route = currentRoute();
    const found = pageOf(route);
    for (const link of links) link.classList.toggle('active', link.dataset.section === found?.section);
    fill(main);
    if (!found) {
      fill(main, h('h1', null, 'Not found'), h('p', null, 'No such page. ', h('a', { href: href([]) }, 'Back to the overview')));
      return;
    }
    found.page({ main, route, signal: leave.signal, session });
  };
  window.onhashchange = mount;
  mount();
}

whenUnauthenticated((err: ApiError) => {
  forgetToken();
  window.onhashchange = null;
  showLogin(err.message);
});

if (savedToken() === null) showLogin();
else
  void login().catch((err: unknown) => {
    if (err instanceof ApiError && err.status === 401) return; // the handler above shows the login form
    fill(root, h('main', null, errorBox(err), h('button', { type: 'button', onclick: () => location.reload() }, 'Try again')));
  });
