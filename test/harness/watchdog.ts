import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

// Cleanup of processes/data dirs a test left behind, and teardown commands
// (e.g. `docker-compose down -v`) it has not run yet. The 'exit' hook covers
// normal worker exit; vitest may also kill its fork workers outright, so a tiny
// watchdog process (stdin pipe from us) cleans up when that pipe hits EOF.
const livePids = new Set<number>();
const liveDirs = new Set<string>();
/** Teardown commands, each an argv as JSON: run after the processes are killed. */
const liveCommands = new Set<string>();
process.on('exit', () => {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  for (const cmd of liveCommands) {
    const [file, ...args] = JSON.parse(cmd) as string[];
    try {
      execFileSync(file, args, { stdio: 'ignore', timeout: 60_000 });
    } catch {}
  }
  for (const dir of liveDirs) fs.rmSync(dir, { recursive: true, force: true });
});

const WATCHDOG_SRC = `
const fs = require('fs'); const cp = require('child_process');
const sets = { pid: new Set(), dir: new Set(), cmd: new Set() }; let buf = '';
process.stdin.on('data', (d) => {
  buf += d; let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const [kind, add, v] = JSON.parse(buf.slice(0, i)); buf = buf.slice(i + 1);
    add ? sets[kind].add(v) : sets[kind].delete(v);
  }
});
process.stdin.on('end', () => {
  for (const pid of sets.pid) { try { process.kill(pid, 'SIGKILL'); } catch {} }
  for (const cmd of sets.cmd) {
    const [file, ...args] = JSON.parse(cmd);
    try { cp.execFileSync(file, args, { stdio: 'ignore', timeout: 60000 }); } catch {}
  }
  setTimeout(() => {
    for (const dir of sets.dir) { try { fs.rmSync(dir, { recursive: true, force: true }); } catch {} }
    process.exit(0);
  }, 300);
});`;

let watchdog: ChildProcess | undefined;
export function track(kind: 'pid' | 'dir' | 'cmd', add: boolean, v: number | string): void {
  const set = (kind === 'pid' ? livePids : kind === 'dir' ? liveDirs : liveCommands) as Set<number | string>;
  if (add) set.add(v);
  else set.delete(v);
  if (!watchdog) {
    watchdog = spawn(process.execPath, ['-e', WATCHDOG_SRC], { stdio: ['pipe', 'ignore', 'ignore'] });
    watchdog.unref(); // must not keep the test worker alive
    (watchdog.stdin as unknown as { unref?: () => void }).unref?.();
    watchdog.stdin?.on('error', () => {});
  }
  watchdog.stdin?.write(JSON.stringify([kind, add, v]) + '\n');
}

/**
 * A command that undoes what a test set up outside this process tree (containers,
 * volumes), run if the test process dies first; untrack it once it has run.
 * It runs in the environment the watchdog started with: pass what else it needs
 * in argv (e.g. through `env NAME=value ...`).
 */
export function trackTeardown(argv: readonly string[], add: boolean): void {
  track('cmd', add, JSON.stringify(argv));
}
