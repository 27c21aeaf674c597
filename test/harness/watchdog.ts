import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

// Cleanup of processes/data dirs a test left behind. The 'exit' hook covers
// normal worker exit; vitest may also kill its fork workers outright, so a tiny
// watchdog process (stdin pipe from us) cleans up when that pipe hits EOF.
const livePids = new Set<number>();
const liveDirs = new Set<string>();
process.on('exit', () => {
  for (const pid of livePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  for (const dir of liveDirs) fs.rmSync(dir, { recursive: true, force: true });
});

const WATCHDOG_SRC = `
const fs = require('fs'); const sets = { pid: new Set(), dir: new Set() }; let buf = '';
process.stdin.on('data', (d) => {
  buf += d; let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const [kind, add, v] = JSON.parse(buf.slice(0, i)); buf = buf.slice(i + 1);
    add ? sets[kind].add(v) : sets[kind].delete(v);
  }
});
process.stdin.on('end', () => {
  for (const pid of sets.pid) { try { process.kill(pid, 'SIGKILL'); } catch {} }
  setTimeout(() => {
    for (const dir of sets.dir) { try { fs.rmSync(dir, { recursive: true, force: true }); } catch {} }
    process.exit(0);
  }, 300);
});`;

let watchdog: ChildProcess | undefined;
export function track(kind: 'pid' | 'dir', add: boolean, v: number | string): void {
  const set = (kind === 'pid' ? livePids : liveDirs) as Set<number | string>;
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

