import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TitanError, type LogStream } from '../../pkg/model/index.js';
import { killProcessGroup, processesWithEnv, processStartTime } from './process-group.js';

/** What the worker asks its launcher to start. */
export interface LaunchRequest {
  id: number;
  file: string;
  args: string[];
  env: Record<string, string>;
  /** Run as this user, from this directory; absent: as the launcher's user, in its directory. */
  user?: { uid: number; gid: number; cwd: string };
}

/** What the launcher tells the worker, in order per id: spawned or failed, then output, then closed. */
export type LauncherMessage =
  | { type: 'spawned'; id: number; pid: number; procStart: string | null }
  | { type: 'failed'; id: number; message: string }
  | { type: 'output'; id: number; stream: LogStream; text: string }
  | { type: 'closed'; id: number; code: number | null; signal: NodeJS.Signals | null };

/** How a launched process ended: its exit, or the launcher's death (which took the process with it). */
export type LaunchedEnd = { type: 'closed'; code: number | null; signal: NodeJS.Signals | null } | { type: 'lost'; reason: string };

/** A process the launcher started. */
export interface LaunchedProcess {
  readonly pid: number;
  /** Its start time in /proc (process-group.ts), read by the launcher as it started. */
  readonly procStart: string | undefined;
  /** Resolves after all its output was handed over. Never rejects. */
  readonly closed: Promise<LaunchedEnd>;
  /** Stop following it: no more output, and it no longer keeps the worker's event loop alive. */
  detach(): void;
}

export type LaunchOutput = (stream: LogStream, text: string) => void;

export const LAUNCHER_DIED_REASON = "the worker's process launcher died, and the job with it";

interface Launch {
  output: LaunchOutput;
  followed: boolean;
  /** While it starts: its environment, which names the process should the launcher die before telling its pid. */
  env?: Record<string, string>;
  /** Once it started: its pid (its group's id) and start time. */
  pid?: number;
  procStart?: string;
  started?: (process: LaunchedProcess) => void;
  failed?: (err: Error) => void;
  ended?: (end: LaunchedEnd) => void;
}

/** The compiled launcher: beside this file in dist/, or in dist/ when this runs from its source (tests). */
function launcherScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'launcher-main.js'), path.resolve(here, '../../dist/internal/worker/launcher-main.js')];
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) throw new TitanError('Unavailable', `the process launcher is missing (looked for ${candidates.join(', ')}): build Titan (npx tsc -p tsconfig.json)`);
  return found;
}

/**
 * Starts host processes through one long-lived launcher process
 * (launcher-main.ts), started on first use and again after it died. The
 * launcher, started through `deathSignal` (setpriv --pdeathsig SIGTERM)
 * where there is one, kills the jobs it started and exits when the worker
 * dies; when the launcher dies alone, the worker kills them (lost()): a host
 * process must not outlive its worker into the time when the master may run
 * the job elsewhere. One launcher is enough: measured, a second one only
 * competed for the same cores (docs/benchmarks.md).
 */
export class ProcessLauncher {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly launches = new Map<number, Launch>();
  /** Launches still followed (not detached), which keep the event loop alive. */
  private followed = 0;

  /** @param deathSignal a command that runs the rest of its arguments with a parent-death signal (setpriv --pdeathsig SIGTERM --). */
  constructor(private readonly deathSignal: readonly string[] | undefined) {}

  /** Starts one process; rejects (Unavailable) when it could not be started. */
  launch(request: Omit<LaunchRequest, 'id'>, output: LaunchOutput): Promise<LaunchedProcess> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const entry: Launch = { output, followed: true, env: request.env, started: resolve, failed: reject };
      let child: ChildProcess;
      try {
        child = this.running();
      } catch (err) {
        reject(err instanceof TitanError ? err : new TitanError('Unavailable', `cannot start the process launcher: ${(err as Error).message}`, { cause: err }));
        return;
      }
      this.launches.set(id, entry);
      this.followed++;
      this.holdLoop();
      child.send({ ...request, id } satisfies LaunchRequest, (err) => {
        if (err) this.fail(id, new TitanError('Unavailable', `the process launcher is gone: ${err.message}`, { cause: err }));
      });
    });
  }

  private running(): ChildProcess {
    if (this.child) return this.child;
    const [command, ...prefix] = [...(this.deathSignal ?? []), process.execPath];
    const child = spawn(command, [...prefix, launcherScript()], {
      // Nothing of the worker's environment: the launcher passes each job its own.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.child = child;
    child.unref();
    child.on('message', (message: LauncherMessage) => this.receive(message));
    child.on('error', (err) => this.lost(child, err.message));
    child.once('exit', (code, signal) => this.lost(child, signal ? `killed by ${signal}` : `exited with code ${code}`));
    return child;
  }

  private receive(message: LauncherMessage): void {
    const entry = this.launches.get(message.id);
    if (!entry) return;
    switch (message.type) {
      case 'spawned': {
        const closed = new Promise<LaunchedEnd>((resolve) => (entry.ended = resolve));
        entry.env = undefined;
        entry.pid = message.pid;
        entry.procStart = message.procStart ?? undefined;
        entry.started?.({
          pid: message.pid,
          procStart: message.procStart ?? undefined,
          closed,
          detach: () => this.unfollow(entry),
        });
        entry.started = entry.failed = undefined;
        return;
      }
      case 'failed':
        this.fail(message.id, new Error(message.message));
        return;
      case 'output':
        if (entry.followed) entry.output(message.stream, message.text);
        return;
      case 'closed':
        this.end(message.id, { type: 'closed', code: message.code, signal: message.signal });
    }
  }

  private fail(id: number, err: Error): void {
    const entry = this.launches.get(id);
    if (!entry?.failed) return;
    this.launches.delete(id);
    entry.failed(err);
    this.unfollow(entry);
  }

  private end(id: number, end: LaunchedEnd): void {
    const entry = this.launches.get(id);
    if (!entry) return;
    this.launches.delete(id);
    entry.ended?.(end);
    this.unfollow(entry);
  }

  private unfollow(entry: Launch): void {
    if (!entry.followed) return;
    entry.followed = false;
    this.followed--;
    this.holdLoop();
  }

  /**
   * The launcher died: its jobs die too (a job must not run on unwatched),
   * so what it had not started fails and what it ran is lost. A launcher
   * that died alone, killed, could not kill its jobs' groups itself: this
   * does. A job it was forking as it died has a pid the worker never
   * learned: it is found by its environment, which holds its job and attempt.
   */
  private lost(child: ChildProcess, why: string): void {
    if (this.child !== child) return;
    this.child = undefined;
    const unnamed = [...this.launches.values()].flatMap((entry) => (entry.env ? [entry.env] : []));
    for (const pid of unnamed.length > 0 ? processesWithEnv(unnamed) : []) killProcessGroup(pid, processStartTime(pid));
    for (const [id, entry] of [...this.launches]) {
      if (entry.pid !== undefined) killProcessGroup(entry.pid, entry.procStart);
      this.fail(id, new TitanError('Unavailable', `the process launcher ${why}`));
      this.end(id, { type: 'lost', reason: LAUNCHER_DIED_REASON });
    }
  }

  /** Like a child process of its own, a followed run keeps the worker's event loop alive; nothing else does. */
  private holdLoop(): void {
    const channel = this.child?.channel;
    if (!channel) return;
    if (this.followed > 0) channel.ref();
    else channel.unref();
  }
}
