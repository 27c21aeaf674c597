import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI_MAIN = path.join(ROOT, 'dist/cmd/titan/main.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

export interface CliOptions {
  /** TITAN_ENDPOINTS for the child. */
  endpoints?: string;
  /** TITAN_PREFIX for the child. */
  prefix?: string;
  env?: Record<string, string>;
  /** Killed (SIGKILL) after this long; the result then has signal set. Default 30 s. */
  timeoutMs?: number;
  cwd?: string;
  /** Written to the child's stdin, which is then closed (default: no stdin). */
  stdin?: string;
}

/**
 * TITAN_CONFIG of every child unless a test sets one: a path never created,
 * so the contexts of whoever runs the tests (~/.config/titan) play no part.
 */
export const NO_CLI_CONFIG = path.join(os.tmpdir(), 'titan-tests-no-cli-config', 'config.yaml');

/** The CLI runs from dist: fail loudly (not with confusing results) when the build is older than the sources. */
function assertBuilt(): void {
  if (!fs.existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: run \`npx tsc -p tsconfig.json\` first`);
  for (const dir of ['cmd/titan', 'internal/cli']) {
    for (const file of fs.readdirSync(path.join(ROOT, dir))) {
      if (!file.endsWith('.ts')) continue;
      const src = path.join(ROOT, dir, file);
      const out = path.join(ROOT, 'dist', dir, file.replace(/\.ts$/, '.js'));
      if (!fs.existsSync(out) || fs.statSync(out).mtimeMs + 1 < fs.statSync(src).mtimeMs) {
        throw new Error(`dist is older than ${dir}/${file}: run \`npx tsc -p tsconfig.json\` first`);
      }
    }
  }
}

function childEnv(options: CliOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { TITAN_CONFIG: NO_CLI_CONFIG };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TITAN_')) env[k] = v;
  if (options.endpoints !== undefined) env.TITAN_ENDPOINTS = options.endpoints;
  if (options.prefix !== undefined) env.TITAN_PREFIX = options.prefix;
  return { ...env, ...options.env };
}

export interface RunningCli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /**
   * Resolves once stdout+stderr satisfy the predicate; rejects on exit or timeout first. The timeout (default
   * 60 s) is a safety net for a loaded machine, where a CLI process can take seconds just to start.
   */
  waitFor(predicate: (out: { stdout: string; stderr: string }) => boolean, timeoutMs?: number): Promise<void>;
  result: Promise<CliResult>;
}

/** Spawns `node dist/cmd/titan/main.js ...args` and lets the test watch its output as it comes. */
export function startCli(args: readonly string[], options: CliOptions = {}): RunningCli {
  assertBuilt();
  const started = Date.now();
  const child = spawn(process.execPath, [CLI_MAIN, ...args], {
    env: childEnv(options),
    cwd: options.cwd ?? ROOT,
    stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  const changed = (): void => listeners.forEach((l) => l());
  child.stdout?.setEncoding('utf8').on('data', (d: string) => ((stdout += d), changed()));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => ((stderr += d), changed()));
  const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  const result = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
      changed();
    });
  });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    result,
    waitFor(predicate, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (predicate({ stdout, stderr })) done(resolve);
          else if (child.exitCode !== null || child.signalCode !== null) {
            done(() => reject(new Error(`titan exited (${child.exitCode ?? child.signalCode}) first.\nstdout:\n${stdout}\nstderr:\n${stderr}`)));
          }
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`timed out waiting for output.\nstdout:\n${stdout}\nstderr:\n${stderr}`))),
          timeoutMs,
        );
        const done = (finish: () => void): void => {
          clearTimeout(timer);
          listeners.delete(check);
          finish();
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** Runs the CLI to completion: `{ code, stdout, stderr }`. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).result;
}
