import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { killProcessGroup, processStartTime } from '../../internal/worker/process-group.js';
import { RunJournal } from '../../internal/worker/run-journal.js';
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
    expect(await again.read('A', 1)).toEqual({
      jobId: 'A', attempt: 1, kind: 'shell', startedAt: 5, pid: 42, procStart: '99',
      end: { result: { type: 'exited', exitCode: 3 }, causes: NO_CAUSES },
    });
    expect(again.list().map((r) => `${r.jobId}.${r.attempt}`).sort()).toEqual(['A.1', 'A.2']);
    await again.remove('A', 1);
    expect(await again.read('A', 1)).toBeUndefined();
    expect(fs.readdirSync(j.dir)).toEqual(['A.2.json']);
    // Removing what is already gone is no error (a sweep and a run may both remove a record).
    await expect(again.remove('A', 1)).resolves.toBeUndefined();
    expect(warnings).toEqual([]);
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
});
