import type { JobState } from '../../pkg/model/job.js';
import type { Resources } from '../../pkg/model/resources.js';
import { formatGpu } from '../../pkg/model/resources.js';
import type { Whoami } from '../api/whoami.js';
import { formatAge, formatCpu, formatMemory } from '../cli/format.js';
import { ApiError } from './api.js';
import { h, type Child } from './dom.js';
import { href, type Route } from './router.js';

/** Who is logged in, and what the role allows (the API checks every call regardless). */
export interface Session {
  who: Whoami;
  can(permission: 'read' | 'submit' | 'manage-queues' | 'manage-tokens'): boolean;
}

/** What a page is given: its part of the screen, its URL, and a signal that aborts when the user leaves it. */
export interface PageContext {
  main: HTMLElement;
  route: Route;
  signal: AbortSignal;
  session: Session;
}

export type Page = (ctx: PageContext) => void;

export function stateBadge(state: JobState | string): HTMLElement {
  return h('span', { class: `badge ${state}`, 'data-state': state }, state);
}

export function jobLink(id: string, text: Child = id): HTMLAnchorElement {
  return h('a', { href: href(['jobs', id]), class: 'mono' }, text);
}

/** "1.5 CPU · 2Gi · 0.25 GPU", the parts that are not zero. */
export function formatResources(r: Resources): string {
  const parts = [`${formatCpu(r.cpu)} CPU`, formatMemory(r.memory)];
  if (r.gpuMilli > 0) parts.push(`${formatGpu(r.gpuMilli)} GPU`);
  return parts.join(' · ');
}

export function ago(at: number | undefined, now = Date.now()): string {
  return at === undefined || at <= 0 ? '-' : `${formatAge(now - at)} ago`;
}

export function timestamp(at: number | undefined): Child {
  if (at === undefined || at <= 0) return '-';
  return h('time', { datetime: new Date(at).toISOString(), title: new Date(at).toISOString() }, ago(at));
}

/** "live" while blocking reads succeed, the error while they fail (they are retried). */
export class LiveStatus {
  readonly el = h('span', { class: 'live off', 'data-live': 'connecting' }, 'connecting');

  ok(): void {
    this.el.className = 'live';
    this.el.dataset.live = 'live';
    this.el.textContent = 'live';
  }

  failed(err: Error): void {
    this.el.className = 'live off';
    this.el.dataset.live = 'error';
    this.el.textContent = `not live: ${err.message}`;
  }
}

export function errorBox(err: unknown): HTMLElement {
  const message = err instanceof ApiError ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err);
  return h('div', { class: 'error', role: 'alert' }, message);
}
