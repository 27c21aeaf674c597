import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { sweepLeftovers } from '../../internal/worker/leftovers.js';
import { processStartTime } from '../../internal/worker/process-group.js';
import { RunJournal } from '../../internal/worker/run-journal.js';
import { isTitanError } from '../../pkg/model/index.js';

const logger = pino({ level: 'silent' });
const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  dirs.splice(0).forEach((dir) => fs.rmSync(dir, { recursive: true, force: true }));
});

function scratch(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-state-test-'));
  dirs.push(dir);
  return dir;
}

function refusal(dir: string): string {
  try {
    new RunJournal(dir, logger).open();
  } catch (err) {
    expect(isTitanError(err, 'InvalidInput')).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`${dir} was accepted`);
}

/** A process group of its own, as a shell run's; alive until the test ends. */
function groupLeader(): { pid: number; start: string; alive: () => boolean } {
  const child = spawn('/bin/sh', ['-c', 'sleep 30 & wait'], { detached: true, stdio: 'ignore' });
  children.push(child);
  const pid = child.pid!;
  return { pid, start: processStartTime(pid)!, alive: () => child.exitCode === null && child.signalCode === null };
}

describe('worker state dir', () => {
  it('is made 0700, and one readable by others is tightened to 0700', () => {
    const fresh = path.join(scratch(), 'a', 'state');
    new RunJournal(fresh, logger).open();
    expect(fs.statSync(fresh).mode & 0o777).toBe(0o700);
    const loose = path.join(scratch(), 'loose');
    fs.mkdirSync(loose, { mode: 0o755 });
    fs.chmodSync(loose, 0o755);
    new RunJournal(loose, logger).open();
    expect(fs.statSync(loose).mode & 0o777).toBe(0o700);
  });

  it('refuses a dir that its group or everyone may write, one owned by another user, and a symlink', () => {
    const shared = path.join(scratch(), 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o770);
    expect(refusal(shared)).toMatch(/--state-dir .*shared is writable by its group \(mode 770\); run chmod 700 on it/);
    fs.chmodSync(shared, 0o707);
    expect(refusal(shared)).toMatch(/is writable by everyone \(mode 707\)/);
    // Not ours: as root, a dir handed to nobody; otherwise one root owns.
    let foreign = '/';
    if (process.getuid?.() === 0) {
      foreign = path.join(scratch(), 'foreign');
      fs.mkdirSync(foreign, { mode: 0o700 });
      fs.chownSync(foreign, 65534, 65534);
    }
    expect(refusal(foreign)).toMatch(/is owned by uid \d+, not by this worker's uid \d+/);
    const link = path.join(scratch(), 'link');
    fs.symlinkSync(scratch(), link);
    expect(refusal(link)).toMatch(/is not a directory/);
  });
});

describe('run journal entries are never trusted to kill', () => {
  it('signals only a group whose leader is alive with the recorded start time; 0, 1, negative pids and entries without a start time are ignored', async () => {
    const journal = new RunJournal(path.join(scratch(), 'state'), logger);
    journal.open();
    const stranger = groupLeader(); // not named correctly by any entry
    const ours = groupLeader();
    const entries = [
      { jobId: 'zero', pid: 0 },
      { jobId: 'one', pid: 1 },
      { jobId: 'negative', pid: -stranger.pid, procStart: stranger.start },
      { jobId: 'no-start', pid: stranger.pid },
      { jobId: 'other-start', pid: stranger.pid, procStart: `${stranger.start}7` },
      { jobId: 'fraction', pid: stranger.pid + 0.5, procStart: stranger.start },
      { jobId: 'ours', pid: ours.pid, procStart: ours.start },
    ];
    for (const e of entries) await journal.write({ attempt: 1, kind: 'shell', startedAt: 1, ...e });
    await sweepLeftovers({ journal, docker: undefined, logger }, () => false);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(stranger.alive()).toBe(true);
    expect(ours.alive()).toBe(false);
    // Each entry was dealt with (removed), signalled or not.
    expect(journal.list()).toEqual([]);
  });
});
