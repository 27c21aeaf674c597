import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page, type Request, type Response } from 'playwright-core';

/** Debian's chromium (scripts/lib/env.sh ensure_packages installs it); playwright downloads no browser. */
export const CHROMIUM = process.env.TITAN_CHROMIUM ?? '/usr/bin/chromium';

/** Where browser tests put their screenshots (git-ignored). */
export const UI_OUTPUT = path.resolve('test-output/ui');

/** Whether the browser is there; under CI a missing browser is a failure, elsewhere the browser tests are skipped. */
export function chromiumAvailable(): boolean {
  if (fs.existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: run scripts/test.sh (ensure_packages installs chromium) or set TITAN_CHROMIUM`);
  return false;
}

export interface TestBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/**
 * Headless chromium talking to nothing but the pages it is sent to: no sync,
 * updates, background or first-run traffic. Playwright gives each launch a
 * fresh temporary profile (--user-data-dir) and removes it on close.
 */
export async function launchChromium(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
  return {
    browser,
    close: () => browser.close(),
  };
}

/** A failure seen in the page: a console error, an uncaught exception, a request that failed or was answered with an error. */
export interface PageProblem {
  kind: 'console' | 'pageerror' | 'requestfailed' | 'response';
  text: string;
  url?: string;
}

/**
 * Records everything that went wrong in a page and every URL it requested.
 * `expect(pattern)` lets one known failure through (a login with a bad token
 * is meant to get a 401); aborted requests are the page leaving a long poll.
 */
export class PageWatch {
  readonly problems: PageProblem[] = [];
  readonly urls: string[] = [];
  private readonly expected: RegExp[] = [];

  constructor(readonly page: Page) {
    page.on('console', (m: ConsoleMessage) => {
      if (m.type() === 'error') this.note({ kind: 'console', text: m.text(), url: m.location().url });
    });
    page.on('pageerror', (err: Error) => this.note({ kind: 'pageerror', text: `${err.message}\n${err.stack ?? ''}` }));
    page.on('request', (r: Request) => void this.urls.push(r.url()));
    page.on('requestfailed', (r: Request) => {
      const failure = r.failure()?.errorText ?? '';
      if (failure !== 'net::ERR_ABORTED') this.note({ kind: 'requestfailed', text: failure, url: r.url() });
    });
    page.on('response', (r: Response) => {
      if (r.status() >= 400) this.note({ kind: 'response', text: String(r.status()), url: r.url() });
    });
  }

  /** Lets problems whose text or URL match through (each test step says which it provokes). */
  expect(pattern: RegExp): void {
    this.expected.push(pattern);
  }

  private note(problem: PageProblem): void {
    if (this.expected.some((p) => p.test(problem.text) || p.test(problem.url ?? ''))) return;
    this.problems.push(problem);
  }
}

export async function newWatchedPage(context: BrowserContext): Promise<PageWatch> {
  return new PageWatch(await context.newPage());
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(UI_OUTPUT, { recursive: true });
  const file = path.join(UI_OUTPUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
