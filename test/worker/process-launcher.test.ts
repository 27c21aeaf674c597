import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LAUNCHER_DIED_REASON, ProcessLauncher, type LaunchedProcess } from '../../internal/worker/process-launcher.js';
import { waitFor } from './helpers.js';

const SETPRIV = ['/usr/bin/setpriv', '--pdeathsig', 'SIGKILL', '--'];
const DIST_LAUNCHER = path.resolve('dist/internal/worker/process-launcher.js');

function alive(pid: number): boolean {
  try {
    // A zombie is dead: only its entry is left for its parent to reap.
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function parentOf(pid: number): number {
  return Number(/^PPid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

describe('the process launcher: shell jobs fork from a small helper process, not from the worker', () => {
  const started: number[] = [];
  const launcher = new ProcessLauncher(SETPRIV);
  const run = async (script: string, output: Array<[string, string]> = []): Promise<LaunchedProcess> => {
    const env = { PATH: '/usr/bin:/bin', FOO: 'bar' };
    const launched = await launcher.launch({ file: SETPRIV[0], args: [...SETPRIV.slice(1), '/bin/sh', '-c', script], env }, (stream, text) => output.push([stream, text]));
    started.push(launched.pid);
    return launched;
  };

  afterAll(() => {
    for (const pid of started) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {}
    }
  });

  it('runs a process in its own group with the given env, hands over all its output, then its exit', async () => {
    const output: Array<[string, string]> = [];
    const launched = await run('echo "out $FOO $$ $(cut -d" " -f5 /proc/$$/stat)"; echo err >&2; exit 3', output);
    const end = await launched.closed;
    expect(end).toEqual({ type: 'closed', code: 3, signal: null });
    const stdout = output.filter(([s]) => s === 'stdout').map(([, t]) => t).join('');
    const [word, foo, pid, pgid] = stdout.trim().split(/\s+/);
    expect([word, foo]).toEqual(['out', 'bar']);
    expect(Number(pid)).toBe(launched.pid);
    expect(Number(pgid)).toBe(launched.pid);
    expect(output.filter(([s]) => s === 'stderr').map(([, t]) => t).join('')).toBe('err\n');
    expect(launched.procStart).toMatch(/^\d+$/);
  });

  it('reports a signal death as the signal, and a missing file as a failed launch', async () => {
    const launched = await run('kill -TERM $$');
    expect(await launched.closed).toEqual({ type: 'closed', code: null, signal: 'SIGTERM' });
    await expect(launcher.launch({ file: '/nonexistent/titan-test', args: [], env: {} }, () => undefined)).rejects.toThrow(/ENOENT/);
  });

  it('keeps 200 concurrent processes apart: each its own output and exit code', async () => {
    const outputs = Array.from({ length: 200 }, () => [] as Array<[string, string]>);
    const ends = await Promise.all(outputs.map(async (output, i) => (await run(`echo ${i}; exit ${i % 7}`, output)).closed));
    ends.forEach((end, i) => expect(end).toEqual({ type: 'closed', code: i % 7, signal: null }));
    outputs.forEach((output, i) => expect(output).toEqual([['stdout', `${i}\n`]]));
  });

  it('when the launcher dies, its processes die with it and end as lost; the next launch starts a new launcher', async () => {
    const launched = await run('sleep 60');
    const launcherPid = parentOf(launched.pid);
    expect(launcherPid).not.toBe(process.pid);
    process.kill(launcherPid, 'SIGKILL');
    expect(await launched.closed).toEqual({ type: 'lost', reason: LAUNCHER_DIED_REASON });
    await waitFor('the job to die with its launcher', async () => (alive(launched.pid) ? undefined : true), 5000);
    // Long enough to read its parent while it runs.
    const next = await run('sleep 2');
    expect(parentOf(next.pid)).not.toBe(launcherPid);
    expect(await next.closed).toEqual({ type: 'closed', code: 0, signal: null });
  });

  it('when the worker process is killed (SIGKILL), its launcher and the jobs it started die too', async () => {
    expect(fs.existsSync(DIST_LAUNCHER)).toBe(true);
    const script = `
      const { ProcessLauncher } = await import(${JSON.stringify(DIST_LAUNCHER)});
      const setpriv = ${JSON.stringify(SETPRIV)};
      const launched = await new ProcessLauncher(setpriv).launch({ file: setpriv[0], args: [...setpriv.slice(1), '/bin/sleep', '60'], env: {} }, () => {});
      console.log(launched.pid);`;
    const worker = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve, reject) => {
      worker.stdout.once('data', (text: Buffer) => resolve(Number(text.toString().trim())));
      worker.once('exit', (code) => reject(new Error(`the worker stand-in exited (${code}) before launching`)));
    });
    started.push(pid);
    const launcherPid = parentOf(pid);
    expect(alive(pid)).toBe(true);
    worker.kill('SIGKILL');
    await waitFor('the launcher and its job to die with the worker', async () => (alive(launcherPid) || alive(pid) ? undefined : true), 5000);
  });
});
