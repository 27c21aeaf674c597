import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { TitanError, type Assignment, type Job } from '../../pkg/model/index.js';
import { titanEnv, type Execution, type ExecutionResult, type Executor, type OutputHandler } from './executor.js';

/** After SIGKILL, how long to wait for the pipes to close before giving up on them. */
const KILL_WAIT_MS = 5000;

/** Runs shell jobs as host processes of the worker's user, each in its own process group. */
export class ShellExecutor implements Executor {
  readonly kind = 'shell' as const;

  start(job: Job, assignment: Assignment, output: OutputHandler): Promise<Execution> {
    const [file, ...args] = job.command;
    if (file === undefined || file === '') {
      return Promise.reject(new TitanError('InvalidInput', 'a shell job needs a command'));
    }
    const child = spawn(file, args, {
      env: { ...process.env, ...job.env, ...titanEnv(job, assignment) },
      // Its own process group, so stop() can signal everything the job started.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new Promise((resolve) => {
      const onError = (err: Error): void => {
        // Like a shell that cannot find the command: exit 127, with the reason.
        resolve(finished({ exitCode: 127, error: `cannot run ${file}: ${err.message}` }));
      };
      child.once('error', onError);
      child.once('spawn', () => {
        child.removeListener('error', onError);
        resolve(new ShellExecution(child, output));
      });
    });
  }

  async abandon(): Promise<void> {
    // A host process of an earlier worker process cannot be found again: nothing to clean.
  }
}

/** An execution that ended before it began. */
function finished(result: ExecutionResult): Execution {
  return { exited: Promise.resolve(result), stop: async () => undefined, detach: () => undefined };
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  // The shell convention for death by signal: 128 + its number.
  return 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
}

class ShellExecution implements Execution {
  readonly exited: Promise<ExecutionResult>;
  private readonly child: ChildProcess;
  private ended = false;
  private detached = false;

  constructor(child: ChildProcess, output: OutputHandler) {
    this.child = child;
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
        resolve({ exitCode: exitCodeOf(code, signal) });
      });
    });
  }

  async stop(graceMs: number): Promise<void> {
    if (this.ended) return;
    this.signalGroup('SIGTERM');
    if (await this.endsWithin(graceMs)) return;
    this.signalGroup('SIGKILL');
    await this.endsWithin(KILL_WAIT_MS);
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
