import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import type { ChildMessage, ClientConfig, LoadConfig, LoadResult, ParentMessage, ProbeConfig, ProbeResult } from './api-client.js';

/**
 * The bench's side of one api-client.js child (a load session or a probe):
 * start it, wait until it is warmed up, stop it and take its result. A
 * child that exits or fails rejects whatever is waiting.
 */
export class ApiChild<R> {
  private readonly child: ChildProcess;
  private readyWait: Promise<void>;
  private resultWait: Promise<R>;
  private exited = false;

  private constructor(script: string, config: ClientConfig) {
    this.child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [], serialization: 'advanced' });
    let onReady!: () => void;
    let onResult!: (r: R) => void;
    let onFailure!: (err: Error) => void;
    this.readyWait = new Promise<void>((resolve) => (onReady = resolve));
    this.resultWait = new Promise<R>((resolve, reject) => {
      onResult = resolve;
      onFailure = reject;
    });
    const failed = new Promise<never>((_, reject) => {
      const fail = (err: Error): void => {
        onFailure(err);
        reject(err);
      };
      this.child.on('message', (msg: ChildMessage) => {
        if (msg.type === 'ready') onReady();
        else if (msg.type === 'result') onResult(msg.result as R);
        else fail(new Error(msg.message));
      });
      this.child.once('exit', (code, signal) => {
        this.exited = true;
        fail(new Error(`the API client process exited (${signal ?? `code ${code}`}) before its result`));
      });
      this.child.once('error', fail);
    });
    failed.catch(() => undefined);
    this.readyWait = Promise.race([this.readyWait, failed]);
    this.resultWait.catch(() => undefined);
    this.send({ type: 'start', config });
  }

  /**
   * The dashboard clients run at the lowest CPU priority: in a deployment
   * they are browsers on other machines, and here they would otherwise take
   * their parsing of every answer out of the two cores that etcd, the master
   * and the simulated nodes share, which is a cost of the bench, not of the
   * API. The master still does all of the API's own work at its priority.
   */
  static load(script: string, config: Omit<LoadConfig, 'role'>): ApiChild<LoadResult> {
    const child = new ApiChild<LoadResult>(script, { role: 'load', ...config });
    try {
      if (child.pid !== undefined) os.setPriority(child.pid, 19);
    } catch {
      // not allowed here: the clients run at normal priority
    }
    return child;
  }

  static probe(script: string, config: Omit<ProbeConfig, 'role'>): ApiChild<ProbeResult> {
    return new ApiChild<ProbeResult>(script, { role: 'probe', ...config });
  }

  get pid(): number | undefined {
    return this.exited ? undefined : this.child.pid;
  }

  ready(timeoutMs = 60_000): Promise<void> {
    return withTimeout(this.readyWait, timeoutMs, 'the API clients were not ready');
  }

  /** Asks it to finish and waits for its result. */
  stop(timeoutMs = 120_000): Promise<R> {
    this.send({ type: 'stop' });
    return withTimeout(this.resultWait, timeoutMs, 'the API client process gave no result');
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  private send(message: ParentMessage): void {
    if (!this.exited && this.child.connected) this.child.send(message);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}
