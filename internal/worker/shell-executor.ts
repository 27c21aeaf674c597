import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TitanError, type Assignment, type Job } from '../../pkg/model/index.js';
import { titanEnv, type Execution, type ExecutionResult, type Executor, type OutputHandler, type RunHandle } from './executor.js';
import { killProcessGroup, processStartTime } from './process-group.js';

/** util-linux's setpriv, on every Debian system; undefined where it is missing. */
const PDEATHSIG_LAUNCHER = findExecutable('setpriv', '/usr/bin:/bin:/usr/sbin:/sbin');

/** The path a command name runs from (searched on PATH unless it has a slash), if executable. */
export function findExecutable(file: string, searchPath: string | undefined): string | undefined {
  const candidates = file.includes('/') ? [file] : (searchPath ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, file));
  for (const candidate of candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {}
  }
  return undefined;
}

/** After SIGKILL, how long to wait for the pipes to close before giving up on them. */
const KILL_WAIT_MS = 5000;

/**
 * Runs shell jobs as host processes of the worker's user, each in its own
 * process group. A host process cannot be re-attached by a later worker
 * process (its pipes died with the old one), so there is no reattach().
 */
export class ShellExecutor implements Executor {
  readonly kind = 'shell' as const;

  start(job: Job, assignment: Assignment, output: OutputHandler): Promise<Execution> {
    const [file, ...args] = job.command;
    if (file === undefined || file === '') {
      return Promise.reject(new TitanError('InvalidInput', 'a shell job needs a command'));
    }
    const env = { ...process.env, ...job.env, ...titanEnv(job, assignment) };
    const executable = findExecutable(file, env.PATH);
    if (!executable) return Promise.reject(new TitanError('Unavailable', `cannot run ${file}: not found or not executable`));
    // With setpriv, the kernel kills the job if this worker process dies: a
    // host process cannot be re-attached, and must not outlive its worker
    // into the time when the master may run the job elsewhere.
    const [command, commandArgs] = PDEATHSIG_LAUNCHER ? [PDEATHSIG_LAUNCHER, ['--pdeathsig', 'SIGKILL', '--', executable, ...args]] : [executable, args];
    const child = spawn(command, commandArgs, {
      env,
      // Its own process group (and session), so signals reach everything the job started.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(new TitanError('Unavailable', `cannot run ${file}: ${err.message}`, { cause: err }));
      };
      child.once('error', onError);
      child.once('spawn', () => {
        child.removeListener('error', onError);
        resolve(new ShellExecution(child, output));
      });
    });
  }

  /** Kills the process group an earlier worker process left behind (its pid comes from the run journal). */
  async abandon(_job: Job, _assignment: Assignment, handle?: RunHandle): Promise<void> {
    if (handle?.pid !== undefined) killProcessGroup(handle.pid, handle.procStart);
  }
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  // The shell convention for death by signal: 128 + its number.
  return 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
}

class ShellExecution implements Execution {
  readonly exited: Promise<ExecutionResult>;
  readonly startedAt = Date.now();
  readonly handle: RunHandle;
  private readonly child: ChildProcess;
  private ended = false;
  private detached = false;

  constructor(child: ChildProcess, output: OutputHandler) {
    this.child = child;
    const pid = child.pid;
    this.handle = pid === undefined ? {} : { pid, ...optional('procStart', processStartTime(pid)) };
    // 'error' after spawn (a failed kill) must not crash the worker.
    child.on('error', () => undefined);
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = child[name];
      stream?.setEncoding('utf8'); // decodes across chunk boundaries
      stream?.on('data', (text: string) => {
        if (!this.detached) output(name, text);
      });
    }
    // 'close' comes after both pipes ended: all output was delivered.
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.ended = true;
        resolve({ type: 'exited', exitCode: exitCodeOf(code, signal) });
      });
    });
  }

  async stop(graceMs: number): Promise<void> {
    if (this.ended) return;
    if (graceMs > 0) {
      this.signalGroup('SIGTERM');
      if (await this.endsWithin(graceMs)) return;
    }
    this.signalGroup('SIGKILL');
    await this.endsWithin(KILL_WAIT_MS);
  }

  /** Processes the job left running in its group (say `cmd &` that closed its output) go with it. */
  async release(): Promise<void> {
    const { pid, procStart } = this.handle;
    if (pid !== undefined) killProcessGroup(pid, procStart);
  }

  detach(): void {
    this.detached = true;
    // Let the worker exit while the job runs on.
    this.child.unref();
    for (const stream of [this.child.stdout, this.child.stderr]) (stream as { unref?: () => void } | null)?.unref?.();
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  }

  private async endsWithin(ms: number): Promise<boolean> {
    if (this.ended) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const ended = await Promise.race([this.exited.then(() => true), timeout]);
    clearTimeout(timer);
    return ended;
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
