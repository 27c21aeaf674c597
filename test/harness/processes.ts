import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { track } from './watchdog.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
export const BIN = {
  titan: path.join(ROOT, 'dist/cmd/titan/main.js'),
  master: path.join(ROOT, 'dist/cmd/master/main.js'),
  worker: path.join(ROOT, 'dist/cmd/worker/main.js'),
};

/** A Titan process started by a test; killed for real with signals. */
export interface TitanProcess {
  name: string;
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function startProcess(name: string, script: string, args: string[], env: NodeJS.ProcessEnv = {}): TitanProcess {
  const child = spawn(process.execPath, [script, ...args], {
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const append = (d: Buffer) => {
    output = (output + d.toString()).slice(-200_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  if (child.pid !== undefined) track('pid', true, child.pid);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      if (child.pid !== undefined) track('pid', false, child.pid);
      resolve(code);
    }),
  );
  return {
    name,
    child,
    output: () => output,
    exited,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
