import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { killProcessGroup, processStartTime } from '../../internal/worker/process-group.js';
import { readJournal, RunJournal } from '../../internal/worker/run-journal.js';
import { NO_CAUSES } from '../../pkg/model/index.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

function journal(): RunJournal {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'titan-journal-')), 'state');
  dirs.push(path.dirname(dir));
  const j = new RunJournal(dir, pino({ level: 'silent' }));
  j.open();
  return j;
}

describe('RunJournal', () => {
  it('keeps one record per attempt across instances, and forgets it on remove', async () => {
    const j = journal();
    await j.write({ jobId: 'A', attempt: 1, kind: 'shell', startedAt: 5, pid: 42, procStart: '99' });
    await j.write({ jobId: 'A', attempt: 2, kind: 'docker', startedAt: 6, containerId: 'c' });
    await j.write({ ...(await j.read('A', 1))!, end: { result: { type: 'exited', exitCode: 3 }, causes: NO_CAUSES } });
    const warnings: string[] = [];
    const again = new RunJournal(j.dir, pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) }));
    again.open();
    expect(await again.read('A', 1)).toEqual({
      jobId: 'A', attempt: 1, kind: 'shell', startedAt: 5, pid: 42, procStart: '99',
      end: { result: { type: 'exited', exitCode: 3 }, causes: NO_CAUSES },
    });
    expect(again.list().map((r) => `${r.jobId}.${r.attempt}`).sort()).toEqual(['A.1', 'A.2']);
    await again.remove('A', 1);
    expect(await again.read('A', 1)).toBeUndefined();
    expect(readJournal(j.dir).map((r) => `${r.jobId}.${r.attempt}`)).toEqual(['A.2']);
    // Removing what is already gone is no error (a sweep and a run may both remove a record).
    await expect(again.remove('A', 1)).resolves.toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it('writes the changes of many runs in one append, and skips a line torn by a crash', async () => {
    const j = journal();
    const appends = vi.spyOn(fs, 'appendFile');
    await Promise.all(Array.from({ length: 50 }, (_, i) => j.write({ jobId: `J${i}`, attempt: 1, kind: 'shell', startedAt: i, pid: 100 + i })));
    await Promise.all(Array.from({ length: 25 }, (_, i) => j.remove(`J${i}`, 1)));
    expect(appends.mock.calls.length).toBe(2);
    appends.mockRestore();
    fs.appendFileSync(path.join(j.dir, 'runs.jsonl'), '{"put":{"jobId":"torn","attem');
    const again = new RunJournal(j.dir, pino({ level: 'silent' }));
    again.open();
    expect(again.list().map((r) => r.jobId).sort()).toEqual(Array.from({ length: 25 }, (_, i) => `J${i + 25}`).sort());
    expect(await again.read('J30', 1)).toMatchObject({ pid: 130 });
  });

  it('takes over the file per run an earlier version kept, and compacts the journal once it grew far past its live records', async () => {
    const j = journal();
    fs.writeFileSync(path.join(j.dir, 'OLD.3.json'), JSON.stringify({ jobId: 'OLD', attempt: 3, kind: 'shell', startedAt: 1, pid: 7, procStart: '5' }));
    j.open();
    expect(await j.read('OLD', 3)).toMatchObject({ pid: 7, procStart: '5' });
    expect(fs.readdirSync(j.dir).sort()).toEqual(['runs.jsonl']);
    for (let i = 0; i < 3000; i++) {
      await j.write({ jobId: `R${i}`, attempt: 1, kind: 'shell', startedAt: i });
      await j.remove(`R${i}`, 1);
    }
    const lines = fs.readFileSync(path.join(j.dir, 'runs.jsonl'), 'utf8').split('\n').filter(Boolean);
    expect(lines.length).toBeLessThan(4096);
    expect(readJournal(j.dir).map((r) => r.jobId)).toEqual(['OLD']);
  });
});

describe('killProcessGroup', () => {
  it('kills the whole group of the recorded process, and nothing that only reuses its pid', async () => {
    const child = spawn('/bin/sh', ['-c', 'sleep 30 & sleep 30 & wait'], { detached: true, stdio: 'ignore' });
    const pid = child.pid!;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const start = processStartTime(pid);
    expect(start).toMatch(/^\d+$/);
    expect(killProcessGroup(pid, `${start}1`)).toBe('not-ours');
    expect(killProcessGroup(pid, start)).toBe('killed');
    await exited;
    // The background sleeps went with their group (once init reaped them, the group is gone).
    let result = killProcessGroup(pid, start);
    for (let i = 0; i < 50 && result !== 'gone'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      result = killProcessGroup(pid, start);
    }
    expect(result).toBe('gone');
  });

  it('kills what a dead leader left in its group, and finds an empty group gone without a look in /proc', async () => {
    const child = spawn('/bin/sh', ['-c', 'sleep 30 & echo $!'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = child.pid!;
    const start = processStartTime(pid);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await new Promise((resolve) => child.once('exit', resolve));
    const sleeper = Number(out.trim());
    expect(processStartTime(sleeper)).toMatch(/^\d+$/);
    expect(killProcessGroup(pid, start)).toBe('killed');
    for (let i = 0; i < 50 && processStartTime(sleeper) !== undefined; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(processStartTime(sleeper)).toBeUndefined();
    let result = killProcessGroup(pid, start);
    for (let i = 0; i < 50 && result !== 'gone'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      result = killProcessGroup(pid, start);
    }
    expect(result).toBe('gone');
    const reads = vi.spyOn(fs, 'readFileSync');
    try {
      expect(killProcessGroup(pid, start)).toBe('gone');
      expect(reads).not.toHaveBeenCalled();
    } finally {
      reads.mockRestore();
    }
  });
});
