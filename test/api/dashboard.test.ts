import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMasterApi } from '../../internal/api/master-api.js';
import { DASHBOARD_CSP, dashboardBuildRoot, SHARED_MODULES } from '../../internal/api/ui.js';
import type { ApiServer } from '../../internal/api/server.js';
import { planToken, type TokenFlags } from '../../internal/cli/tokens.js';
import type { Master } from '../../internal/master/index.js';
import type { GpuDevice } from '../../pkg/model/index.js';
import { Store } from '../../pkg/store/index.js';
import { chromiumAvailable, launchChromium, PageWatch, screenshot, type TestBrowser } from '../harness/browser.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { randomPrefix } from '../harness/wait.js';
import { startMaster, startTestWorker, waitFor, type TestWorker } from '../worker/helpers.js';

const GiB = 2 ** 30;
/** What nvidia-smi would report on a node with four A100s: the worker takes it as its inventory instead of asking a driver. */
const FAKE_GPUS: GpuDevice[] = [0, 1, 2, 3].map((index) => ({ index, uuid: `GPU-fake-${index}`, model: 'A100-SXM4-40GB', memory: 40 * GiB }));
const STEP_MS = 30_000;

const haveBrowser = chromiumAvailable();
const silent = pino({ level: 'silent' });

let etcd: EtcdServer;
let store: Store;
let worker: TestWorker;
let master: Master;
let api: ApiServer;
let chromium: TestBrowser;
const secrets: Record<'submitter' | 'reader' | 'operator', string> = { submitter: '', reader: '', operator: '' };

async function token(flags: TokenFlags): Promise<string> {
  const { token: record, secret } = planToken(flags);
  await store.createToken(record);
  await waitFor(`token ${record.id} in the API cache`, async () => api.cache.tokens.has(record.id) || undefined);
  return secret;
}

async function post<T>(path: string, secret: string, body?: unknown): Promise<T> {
  const res = await fetch(`${api.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

const submit = (doc: Record<string, unknown>): Promise<{ id: string }> => post<{ id: string }>('/v1/jobs', secrets.operator, doc);

async function logIn(context: BrowserContext, secret: string): Promise<PageWatch> {
  const watch = new PageWatch(await context.newPage());
  await watch.page.goto(`${api.url}/ui/`);
  await watch.page.locator('#token').fill(secret);
  await watch.page.getByRole('button', { name: 'Log in' }).click();
  await watch.page.locator('header.top .who').waitFor();
  return watch;
}

function row(page: Page, jobId: string) {
  return page.locator(`#jobs tr[data-key="${jobId}"]`);
}

function badge(page: Page, scope: string, state: string) {
  return page.locator(`${scope} .badge[data-state="${state}"]`).first();
}

function expectClean(watch: PageWatch, secret: string): void {
  expect(watch.problems).toEqual([]);
  // The token never travels in a URL.
  expect(watch.urls.filter((u) => u.includes(secret))).toEqual([]);
  expect(watch.urls.every((u) => u.startsWith(api.url) || u.startsWith('data:'))).toBe(true);
}

describe.skipIf(!haveBrowser)('web dashboard in chromium', () => {
  beforeAll(async () => {
    etcd = await startEtcd({ name: 'dashboard' });
    const prefix = randomPrefix();
    store = new Store({ endpoints: [etcd.endpoints], prefix });
    worker = await startTestWorker(etcd.endpoints, { prefix, executors: 'shell', docker: 'off', cpu: '4', memory: '8Gi' }, { gpus: FAKE_GPUS });
    master = await startMaster(etcd.endpoints, prefix);
    api = await startMasterApi(master, { listen: '127.0.0.1:0' }, silent);
    secrets.submitter = await token({ role: 'submitter', name: 'dashboard-test' });
    secrets.reader = await token({ role: 'reader', name: 'auditor' });
    secrets.operator = await token({ role: 'operator', name: 'ops' });
    chromium = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await chromium?.close();
    await api?.close();
    await master?.stop();
    await worker?.stop();
    store?.close();
    await etcd?.stop();
  });

  it('serves the page, its modules and the CLI modules it shares, under a strict CSP, and nothing else', async () => {
    const page = await fetch(`${api.url}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toContain("frame-ancestors 'none'");
    expect(DASHBOARD_CSP).not.toContain('unsafe');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await page.text()).not.toMatch(/<script>|<style|style=/);
    expect((await fetch(`${api.url}/ui`, { redirect: 'manual' })).headers.get('location')).toBe('/ui/');
    const app = await fetch(`${api.url}/ui/js/internal/dashboard/app.js`);
    expect(app.headers.get('content-type')).toMatch(/^text\/javascript/);
    for (const refused of ['/ui/js/internal/api/server.js', '/ui/js/internal/dashboard/../api/server.js', '/ui/js/pkg/model/token.js', '/ui/js/%2e%2e/package.json']) {
      expect((await fetch(`${api.url}${refused}`)).status, refused).toBe(404);
    }
    // What the browser loads imports only what is served: the dashboard's modules and the shared pure ones.
    const root = dashboardBuildRoot() as string;
    const modules = [...fs.readdirSync(path.join(root, 'internal/dashboard')).filter((f) => f.endsWith('.js')).map((f) => `internal/dashboard/${f}`), ...SHARED_MODULES];
    for (const module of modules) {
      const source = fs.readFileSync(path.join(root, module), 'utf8');
      for (const [, spec] of source.matchAll(/^(?:import|export)\b[^;]*?from '([^']+)'/gms)) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(module), spec));
        expect(modules, `${module} imports ${spec}`).toContain(target);
      }
    }
  });

  it('logs in with a token, shows counts and pending reasons, filters jobs, and follows a job and its logs live', async () => {
    const context = await chromium.browser.newContext({ viewport: { width: 1400, height: 900 } });
    try {
      // A bad token is refused and says why.
      const login = new PageWatch(await context.newPage());
      login.expect(/\/v1\/whoami|status of 401/);
      await login.page.goto(`${api.url}/ui/`);
      await screenshot(login.page, '01-login');
      await login.page.locator('#token').fill('titan_abcdefabcdef_wrong');
      await login.page.getByRole('button', { name: 'Log in' }).click();
      await login.page.getByRole('alert').filter({ hasText: 'not valid' }).waitFor();
      await login.page.close();

      const tooBig = await submit({ name: 'too-big', shell: 'true', cpu: 64 });
      const sharer = await submit({ name: 'gpu-sharer', shell: 'sleep 300', gpu: 0.25, cpu: '500m', memory: '64Mi' });
      const whole = await submit({ name: 'gpu-whole', shell: 'sleep 300', gpu: 2, cpu: '500m', memory: '64Mi' });
      const watch = await logIn(context, secrets.submitter);
      const { page } = watch;
      await page.evaluate(() => Object.assign(window, { titanNoReload: true }));

      // Overview: counts by state and what pending jobs wait for.
      await page.locator('#pending-reasons').getByText('fits no registered node').waitFor({ timeout: STEP_MS });
      await page.locator('#state-counts a[data-state="Running"] .n').filter({ hasText: '2' }).waitFor({ timeout: STEP_MS });
      await screenshot(page, '02-overview');

      // Jobs: filters go into the URL and narrow the list.
      await page.getByRole('link', { name: 'Jobs', exact: true }).click();
      await row(page, sharer.id).waitFor();
      await page.locator('#state-filter [data-state="Pending"]').click();
      await row(page, sharer.id).waitFor({ state: 'detached' });
      await row(page, tooBig.id).waitFor();
      expect(new URL(page.url()).hash).toContain('state=Pending');
      await page.locator('#state-filter [data-state="Pending"]').click();
      await page.locator('#job-search').fill('gpu-');
      await row(page, tooBig.id).waitFor({ state: 'detached' });
      await row(page, whole.id).waitFor();
      expect(new URL(page.url()).hash).toContain('q=gpu-');
      await page.locator('#jobs th[data-key="name"]').click();
      expect(new URL(page.url()).hash).toContain('sort=name');
      await expect.poll(() => page.locator('#jobs tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-key')))).toEqual([sharer.id, whole.id]);
      await screenshot(page, '03-jobs-filtered');

      // A job submitted now shows up, runs and ends on the open page.
      await page.locator('#job-search').fill('');
      await page.locator('#jobs th[data-key="created"]').click();
      const quick = await submit({ name: 'quick', shell: 'sleep 2; echo done', cpu: '250m', memory: '32Mi' });
      await badge(page, `#jobs tr[data-key="${quick.id}"]`, 'Running').waitFor({ timeout: STEP_MS });
      await badge(page, `#jobs tr[data-key="${quick.id}"]`, 'Succeeded').waitFor({ timeout: STEP_MS });

      // The job that cannot fit: its pending reason, word for word.
      await page.goto(`${api.url}/ui/#/jobs/${tooBig.id}`);
      const reason = (await store.requireJob(tooBig.id)).value.reason ?? '';
      expect(reason).toMatch(/^no registered node can ever run it/);
      await page.locator('#job-reason').filter({ hasText: reason }).waitFor();
      await screenshot(page, '04-job-pending');

      // Logs of a running job, as they are written, then its end.
      const printer = await submit({ name: 'printer', shell: 'for i in $(seq 1 16); do echo "line $i"; echo "warn $i" >&2; sleep 0.4; done', cpu: '250m', memory: '32Mi' });
      await page.goto(`${api.url}/ui/#/jobs/${printer.id}`);
      await badge(page, 'main', 'Running').waitFor({ timeout: STEP_MS });
      await page.locator('#logs-link').click();
      await page.locator('#log-output').getByText('line 2').waitFor({ timeout: STEP_MS });
      expect(await page.locator('#log-output').textContent()).not.toContain('line 16');
      await page.locator('#log-output .stderr').first().waitFor();
      await screenshot(page, '05-logs-streaming');
      await page.locator('#log-end .badge[data-state="Succeeded"]').waitFor({ timeout: STEP_MS });
      expect(await page.locator('#log-output').textContent()).toContain('line 16');
      await page.locator('#show-stderr').uncheck();
      expect(await page.locator('#log-output .stderr').first().isVisible()).toBe(false);
      await screenshot(page, '06-logs-ended');
      await page.goBack();
      await badge(page, 'main', 'Succeeded').waitFor({ timeout: STEP_MS });

      // Nodes: the GPU grid with the fractional share and its job.
      await page.getByRole('link', { name: 'Nodes', exact: true }).click();
      const node = page.locator(`[data-node="${worker.worker.nodeId}"]`);
      await node.locator('.gpu').nth(3).waitFor();
      expect(await node.locator('.gpu').count()).toBe(4);
      await node.locator(`.gpu a[data-job="${sharer.id}"][data-gpu-milli="250"]`).waitFor();
      expect(await node.locator(`.gpu a[data-job="${whole.id}"]`).count()).toBe(2);
      await page.locator('#placement').filter({ hasText: 'placement policy' }).waitFor();
      await screenshot(page, '07-nodes');

      // Queues: the tree with its figures.
      await post('/v1/queues', secrets.operator, { name: 'research', quotaGpu: 2, quotaCpu: 2, weight: 2 });
      await post('/v1/queues', secrets.operator, { name: 'vision', parent: 'research', quotaGpu: 1, limitGpu: 2 });
      await page.getByRole('link', { name: 'Queues', exact: true }).click();
      await page.locator('#queues tr[data-key="vision"]').waitFor({ timeout: STEP_MS });
      await screenshot(page, '08-queues');

      // Jobs waiting for capacity: the first in line gets the node reserved, the next shows its place in the queue.
      const firstInLine = await submit({ name: 'all-gpus-1', shell: 'true', gpu: 4, cpu: '250m', memory: '32Mi' });
      const second = await submit({ name: 'all-gpus-2', shell: 'true', gpu: 4, cpu: '250m', memory: '32Mi' });
      await page.goto(`${api.url}/ui/#/jobs/${second.id}`);
      // Its place counts every job ahead of it that did not start, the one that can never run too.
      await page.locator('#queue-position').filter({ hasText: /^#\d+ in queue default$/ }).waitFor({ timeout: STEP_MS });
      expect((await store.requireJob(second.id)).value.reason).toContain(`; ${await page.locator('#queue-position').textContent()}`);
      await screenshot(page, '09-job-queue-position');
      await page.goto(`${api.url}/ui/#/jobs/${firstInLine.id}`);
      await page.locator('#queue-position').filter({ hasText: 'first in line' }).waitFor({ timeout: STEP_MS });

      // Cancel from the job's page; the state changes there.
      await page.goto(`${api.url}/ui/#/jobs/${sharer.id}`);
      await page.locator('#cancel-job').click();
      await page.locator('#confirm-cancel').click();
      await badge(page, 'main', 'Cancelled').waitFor({ timeout: STEP_MS });
      await screenshot(page, '10-job-cancelled');

      expect(await page.evaluate(() => (window as unknown as { titanNoReload?: boolean }).titanNoReload)).toBe(true);
      expect(await page.evaluate(() => [sessionStorage.getItem('titan.token') !== null, localStorage.length])).toEqual([true, 0]);
      expectClean(watch, secrets.submitter);
    } finally {
      await context.close();
    }
  }, 180_000);

  it('shows an array (tasks per state, failed indexes, its tasks in the list) and what a job waits for', async () => {
    const context = await chromium.browser.newContext({ viewport: { width: 1400, height: 900 } });
    try {
      // The jobs earlier tests left running or first in line would hold this one-node cluster.
      const left = await fetch(`${api.url}/v1/jobs?state=Pending,Scheduled,Running&limit=1000`, { headers: { authorization: `Bearer ${secrets.operator}` } });
      for (const j of ((await left.json()) as { jobs: { id: string }[] }).jobs) await post(`/v1/jobs/${j.id}/cancel`, secrets.operator);
      const sweep = await submit({ name: 'sweep', shell: '[ "$TITAN_ARRAY_INDEX" -ne 1 ]', array: '0-2', cpu: '250m', memory: '32Mi', labels: { sweep: 'lr' } });
      const after = await submit({ name: 'after-sweep', shell: 'true', after: `any:${sweep.id}`, cpu: '250m', memory: '32Mi' });
      const watch = await logIn(context, secrets.submitter);
      const { page } = watch;

      await page.goto(`${api.url}/ui/#/jobs/${sweep.id}`);
      await page.locator('#array-failed').filter({ hasText: /^1$/ }).waitFor({ timeout: STEP_MS });
      await page.locator('#array-states a[data-state="Succeeded"]').filter({ hasText: /^2$/ }).waitFor();
      expect(await page.locator('#cancel-array').isDisabled()).toBe(true); // every task ended
      expect(await page.locator('#retry-failed').isDisabled()).toBe(false);
      await screenshot(page, '12-array');

      // The failed count links to the list of the array's failed tasks: the API's and titan list's filters, by name.
      await page.locator('#array-states a[data-state="Failed"]').click();
      await row(page, `${sweep.id}-000001`).waitFor();
      await expect.poll(() => page.locator('#jobs tbody tr').count()).toBe(1);
      const hash = new URL(page.url()).hash;
      expect(hash).toContain(`array=${sweep.id}`);
      expect(hash).toContain('state=Failed');
      expect(await page.locator('#array-filter').inputValue()).toBe(sweep.id);
      await page.locator('#state-filter [data-state="Failed"]').click();
      await expect.poll(() => page.locator('#jobs tbody tr').count()).toBe(3);
      await page.locator('#array-filter').fill('');
      await page.locator('#label-filter').fill('sweep=lr');
      await expect.poll(() => new URL(page.url()).hash).toBe('#/jobs?label=sweep%3Dlr');
      await expect.poll(() => page.locator('#jobs tbody tr').count()).toBe(3);

      // A task links to its array; a dependent names (and links) what it waits for.
      await page.goto(`${api.url}/ui/#/jobs/${sweep.id}-000001`);
      await page.locator('#job-array').filter({ hasText: `${sweep.id} task 1 of 3` }).waitFor({ timeout: STEP_MS });
      await page.goto(`${api.url}/ui/#/jobs/${after.id}`);
      await page.locator('#job-after').filter({ hasText: `any:${sweep.id}` }).waitFor({ timeout: STEP_MS });
      await badge(page, '.panel', 'Succeeded').waitFor({ timeout: STEP_MS });
      await page.locator('#job-after a').click();
      await page.locator('#array-failed').waitFor();
      expectClean(watch, secrets.submitter);
    } finally {
      await context.close();
    }
  }, 120_000);

  it('greys out the write buttons of a read-only token', async () => {
    const context = await chromium.browser.newContext({ viewport: { width: 1400, height: 900 } });
    try {
      const job = await submit({ name: 'read-only-view', shell: 'sleep 300', cpu: '250m', memory: '32Mi' });
      const watch = await logIn(context, secrets.reader);
      const { page } = watch;
      expect(await page.locator('header.top .who').getAttribute('data-role')).toBe('reader');
      await page.goto(`${api.url}/ui/#/jobs/${job.id}`);
      await page.locator('#cancel-job').waitFor();
      expect(await page.locator('#cancel-job').isDisabled()).toBe(true);
      expect(await page.locator('#retry-job').isDisabled()).toBe(true);
      expect(await page.locator('#cancel-job').getAttribute('title')).toMatch(/reader token/);
      await screenshot(page, '11-reader-job');
      expectClean(watch, secrets.reader);
    } finally {
      await context.close();
    }
  }, 60_000);
});
