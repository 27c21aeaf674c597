import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TitanError, type Assignment, type Job } from '../../pkg/model/index.js';
import type { UserIds } from './container-box.js';
import { runEnv, type Execution, type ExecutionResult, type Executor, type OutputHandler, type RunHandle } from './executor.js';
import { killJournaledGroup, killProcessGroup } from './process-group.js';
import { ProcessLauncher, type LaunchedEnd, type LaunchedProcess } from './process-launcher.js';

/** util-linux's setpriv, on every Debian system; undefined where it is missing. */
const SETPRIV = findExecutable('setpriv', '/usr/bin:/bin:/usr/sbin:/sbin');
/**
 * Runs the rest of its arguments so that the kernel sends it SIGTERM when
 * its parent dies: the process launcher, which then kills its jobs' groups.
 * Jobs themselves do not go through it: a second exec per job costs more
 * than the launcher's fork (docs/benchmarks.md).
 */
const DEATH_SIGNAL = SETPRIV ? [SETPRIV, '--pdeathsig', 'SIGTERM', '--'] : undefined;

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

/** PATH of a shell job when the worker has none. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ShellExecutorOptions {
  /** Run jobs as this user (the worker must be root); undefined: as the worker's user. */
  user?: UserIds | undefined;
}

/** Home directory and primary group of a uid, from /etc/passwd. */
function passwdEntry(uid: number): { home: string; gid: number } | undefined {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const fields = line.split(':');
      if (fields.length >= 6 && Number(fields[2]) === uid && fields[2] !== '') return { gid: Number(fields[3]), home: fields[5] };
    }
  } catch {}
  return undefined;
}

/**
 * The whole environment of a shell job: PATH, HOME, the job's env and
 * Titan's variables. Never the worker's own environment, which may hold
 * credentials (etcd passwords, cloud keys) that are not the job's.
 */
export function shellEnv(job: Job, assignment: Assignment, home: string): Record<string, string> {
  return { PATH: process.env.PATH ?? DEFAULT_PATH, HOME: home, ...runEnv(job, assignment) };
}

/**
 * Runs shell jobs as host processes, each in its own process group (and
 * session), as the worker's user or `--shell-user`. A host process cannot be
 * re-attached by a later worker process (its pipes died with the old one),
 * so there is no reattach().
 */
export class ShellExecutor implements Executor {
  readonly kind = 'shell' as const;
  private readonly ids: { uid: number; gid: number } | undefined;
  private readonly home: string;
  /** The user's home when it exists (nobody's is /nonexistent), else /. */
  private readonly cwd: string;
  /** Forks from a small process, not from the worker: see launcher-main.ts. */
  private readonly launcher = new ProcessLauncher(DEATH_SIGNAL);

  constructor(options: ShellExecutorOptions = {}) {
    const { user } = options;
    const entry = user ? passwdEntry(user.uid) : undefined;
    // Without a gid, the user's primary group; a uid with no passwd entry gets the group of the same number.
    this.ids = user ? { uid: user.uid, gid: user.gid ?? entry?.gid ?? user.uid } : undefined;
    this.home = user ? (entry?.home ?? '/') : (process.env.HOME ?? os.homedir());
    this.cwd = fs.existsSync(this.home) ? this.home : '/';
  }

  start(job: Job, assignment: Assignment, output: OutputHandler): Promise<Execution> {
    const [file, ...args] = job.command;
    if (file === undefined || file === '') {
      return Promise.reject(new TitanError('InvalidInput', 'a shell job needs a command'));
    }
    let env: Record<string, string>;
    try {
      env = shellEnv(job, assignment, this.home);
    } catch (err) {
      return Promise.reject(err);
    }
    const executable = findExecutable(file, env.PATH);
    if (!executable) return Promise.reject(new TitanError('Unavailable', `cannot run ${file}: not found or not executable`));
    // A host process cannot be re-attached, and must not outlive its worker into
    // the time when the master may run the job elsewhere: the launcher kills it
    // when the worker dies, and the worker when the launcher dies.
    return this.launcher
      .launch(
        {
          file: executable,
          args,
          env,
          // libuv drops the worker's supplementary groups when it switches user; the worker's
          // working directory may be closed to that user, so the job starts in its home.
          ...(this.ids ? { user: { ...this.ids, cwd: this.cwd } } : {}),
        },
        output,
      )
      .then(
        (launched) => new ShellExecution(launched),
        (err: Error) => {
          throw err instanceof TitanError ? err : new TitanError('Unavailable', `cannot run ${file}: ${err.message}`, { cause: err });
        },
      );
  }

  /** Kills the process group an earlier worker process left behind (its pid comes from the run journal). */
  async abandon(_job: Job, _assignment: Assignment, handle?: RunHandle): Promise<void> {
    if (handle?.pid !== undefined) killJournaledGroup(handle.pid, handle.procStart);
  }
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  // The shell convention for death by signal: 128 + its number.
  return 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
}

function resultOf(end: LaunchedEnd): ExecutionResult {
  return end.type === 'lost' ? end : { type: 'exited', exitCode: exitCodeOf(end.code, end.signal) };
}

class ShellExecution implements Execution {
  readonly exited: Promise<ExecutionResult>;
  readonly startedAt = Date.now();
  readonly handle: RunHandle;
  private readonly launched: LaunchedProcess;
  private ended = false;

  constructor(launched: LaunchedProcess) {
    this.launched = launched;
    this.handle = { pid: launched.pid, ...optional('procStart', launched.procStart) };
    this.exited = launched.closed.then((end) => {
      this.ended = true;
      return resultOf(end);
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
    // Let the worker exit while the job runs on.
    this.launched.detach();
  }

  private signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.launched.pid, signal);
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
