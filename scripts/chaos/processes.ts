import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A Titan daemon the chaos check starts, kills with SIGKILL and starts again with the same arguments. */
export class ManagedProcess {
  private child: ChildProcess | undefined;
  private exitedPromise: Promise<void> = Promise.resolve();
  restarts = 0;

  constructor(
    readonly name: string,
    private readonly script: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly logDir: string,
  ) {}

  start(): void {
    const log = fs.openSync(path.join(this.logDir, `${this.name}.log`), 'a');
    const child = spawn(process.execPath, [this.script, ...this.args], { env: { ...process.env, ...this.env }, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.child = child;
    this.exitedPromise = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get pid(): number | undefined {
    return this.running() ? this.child?.pid : undefined;
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running()) this.child?.kill(signal);
    await this.exitedPromise;
  }

  async restart(): Promise<void> {
    await this.kill();
    this.restarts++;
    this.start();
  }
}
