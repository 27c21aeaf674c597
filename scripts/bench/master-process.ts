import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tail } from '../../internal/localcluster/etcd-process.js';
import { cpuSeconds, rssMiB } from './proc-stats.js';

export interface MasterProcessOptions {
  /** dist/cmd/master/main.js */
  script: string;
  endpoints: string;
  prefix: string;
  logFile: string;
  /** NODE_OPTIONS for the master only. */
  nodeOptions?: string;
  /** Node flags before the script, e.g. --cpu-prof (which NODE_OPTIONS does not accept). */
  execArgv?: string[];
  /** Extra environment for the master (over the bench's own, which it inherits: TITAN_MASTER_* settings pass through). */
  env?: NodeJS.ProcessEnv;
  logLevel?: string;
  /** More titan-master flags (--listen for --api). */
  args?: string[];
}

/** Lines of a pino log (JSON per line) whose msg is one of `messages`; other lines are passed over. */
export function countLogMessages(text: string, messages: readonly string[]): number {
  let count = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const msg = (JSON.parse(line) as { msg?: unknown }).msg;
      if (typeof msg === 'string' && messages.includes(msg)) count++;
    } catch {
      // a line cut short (the process was killed while writing)
    }
  }
  return count;
}

/**
 * The real titan-master as a child process, the way it runs in production:
 * its own event loop and heap, talking to etcd over gRPC. Its output goes to
 * a log file whose tail is shown when it dies.
 */
export class MasterProcess {
  private child: ChildProcess | undefined;
  private exitInfo: string | undefined;
  private exitedPromise: Promise<void> = Promise.resolve();
  /** Set by stop(): the run is ending and no phase may start the master again. */
  private closed = false;

  constructor(private readonly options: MasterProcessOptions) {}

  start(): void {
    if (this.closed) throw new Error('the bench is shutting down');
    if (this.running()) throw new Error('the master is already running');
    const { script, endpoints, prefix, logFile, nodeOptions, execArgv, logLevel } = this.options;
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.options.env, LOG_LEVEL: logLevel ?? 'warn' };
    if (nodeOptions !== undefined) env.NODE_OPTIONS = nodeOptions;
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    const log = fs.openSync(logFile, 'a');
    const args = [script, '--endpoints', endpoints, '--prefix', prefix, '--id', 'bench-master', ...(this.options.args ?? [])];
    const child = spawn(process.execPath, [...(execArgv ?? []), ...args], {
      env,
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    this.child = child;
    this.exitInfo = undefined;
    this.exitedPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = signal ? `signal ${signal}` : `code ${code}`;
        resolve();
      });
      child.once('error', (err) => {
        this.exitInfo = `spawn failed: ${err.message}`;
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.running() ? this.child?.pid : undefined;
  }

  running(): boolean {
    return this.child !== undefined && this.exitInfo === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Why it is not running, with the end of its log; undefined while it runs. */
  failure(): string | undefined {
    if (!this.child || this.running()) return undefined;
    const log = tail(this.options.logFile, 1500);
    return `the master exited (${this.exitInfo ?? 'unknown'})${log ? `; its log ends:\n${log}` : ''}`;
  }

  /** Times the masters of this run (one log for all of them) stepped down as leader, for whatever reason (a lost lease too). */
  leadershipLosses(): number | undefined {
    try {
      return countLogMessages(fs.readFileSync(this.options.logFile, 'utf8'), ['no longer leader']);
    } catch {
      return undefined;
    }
  }

  rssMiB(): number | undefined {
    return rssMiB(this.pid);
  }

  /** The highest RSS this master process had so far (VmHWM). */
  peakRssMiB(): number | undefined {
    return rssMiB(this.pid, 'VmHWM');
  }

  cpuSeconds(): number | undefined {
    return cpuSeconds(this.pid);
  }

  /** SIGTERM (a graceful stop, which also writes a --cpu-prof profile), SIGKILL after graceMs; the master is not started again. */
  async stop(graceMs = 10_000): Promise<void> {
    this.closed = true;
    await this.stopProcess(graceMs);
  }

  /** The same stop, for a phase that starts the master again (it resigns its leadership on the way). */
  async stopForRestart(graceMs = 10_000): Promise<void> {
    if (this.closed) throw new Error('the bench is shutting down');
    await this.stopProcess(graceMs);
  }

  private async stopProcess(graceMs: number): Promise<void> {
    const child = this.child;
    if (!child || !this.running()) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exitedPromise;
    clearTimeout(timer);
  }

  /** Synchronous last resort for process exit paths. */
  killNow(): void {
    if (this.running()) this.child?.kill('SIGKILL');
  }
}
