import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processesWithEnv } from '../../internal/worker/process-group.js';
import { LAUNCHER_DIED_REASON, ProcessLauncher, type LaunchedEnd, type LaunchedProcess } from '../../internal/worker/process-launcher.js';
import { waitFor } from './helpers.js';

/** What the worker starts its launcher under: the launcher kills its jobs when the worker dies. */
const SETPRIV = ['/usr/bin/setpriv', '--pdeathsig', 'SIGTERM', '--'];
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
    const launched = await launcher.launch({ file: '/bin/sh', args: ['-c', script], env }, (stream, text) => output.push([stream, text]));
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

  it('when the launcher dies, the worker kills its jobs\' groups and ends them as lost; the next launch starts a new launcher', async () => {
    const output: Array<[string, string]> = [];
    // A background child in the job's group, then the leader.
    const launched = await run('sleep 60 & echo $!; exec sleep 61', output);
    await waitFor('the background pid', async () => (output.length > 0 ? true : undefined), 5000);
    const background = Number(output[0][1].trim());
    started.push(background);
    const launcherPid = parentOf(launched.pid);
    expect(launcherPid).not.toBe(process.pid);
    expect(alive(background)).toBe(true);
    process.kill(launcherPid, 'SIGKILL');
    expect(await launched.closed).toEqual({ type: 'lost', reason: LAUNCHER_DIED_REASON });
    await waitFor('the job and its background child to die with the launcher', async () => (alive(launched.pid) || alive(background) ? undefined : true), 5000);
    // Long enough to read its parent while it runs.
    const next = await run('sleep 2');
    expect(parentOf(next.pid)).not.toBe(launcherPid);
    expect(await next.closed).toEqual({ type: 'closed', code: 0, signal: null });
  });

  it('a launcher killed while it forks leaves no job running: those it never named are found by their environment', async () => {
    const own = new ProcessLauncher(SETPRIV);
    const marker = `titan-test-${process.pid}-${Date.now()}`;
    const envs = Array.from({ length: 40 }, (_, i) => ({ PATH: '/usr/bin:/bin', TITAN_TEST_RUN: `${marker}-${i}` }));
    const starts = envs.map((env) => own.launch({ file: '/bin/sleep', args: ['60'], env }, () => undefined));
    // Killed as soon as the first one started: the rest are being forked, or wait for their turn.
    const first = await Promise.race(starts);
    process.kill(parentOf(first.pid), 'SIGKILL');
    const outcomes = await Promise.allSettled(starts.map(async (start) => (await start).closed));
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') expect(outcome.value).toEqual<LaunchedEnd>({ type: 'lost', reason: LAUNCHER_DIED_REASON });
      else expect(String(outcome.reason)).toMatch(/process launcher/);
    }
    await waitFor('no process of any of the runs', async () => (processesWithEnv(envs).filter(alive).length === 0 ? true : undefined), 5000);
  });

  it('finds processes by every entry of their initial environment, and only those', async () => {
    const marker = `titan-test-${process.pid}-${Date.now()}`;
    const child = spawn('/bin/sleep', ['30'], { env: { PATH: '/usr/bin:/bin', TITAN_TEST_RUN: marker, NAME: 'é' }, stdio: 'ignore' });
    try {
      await waitFor('the child to exec', async () => (fs.readFileSync(`/proc/${child.pid}/environ`, 'latin1').includes(marker) ? true : undefined), 5000);
      expect(processesWithEnv([{ TITAN_TEST_RUN: marker, NAME: 'é' }])).toEqual([child.pid]);
      expect(processesWithEnv([{ TITAN_TEST_RUN: marker, NAME: 'e' }])).toEqual([]);
      expect(processesWithEnv([{ TITAN_TEST_RUN: `${marker}x` }])).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('when the worker process is killed (SIGKILL), its launcher kills the jobs it started and exits', async () => {
    expect(fs.existsSync(DIST_LAUNCHER)).toBe(true);
    const script = `
      const { ProcessLauncher } = await import(${JSON.stringify(DIST_LAUNCHER)});
      const launched = await new ProcessLauncher(${JSON.stringify(SETPRIV)}).launch({ file: '/bin/sleep', args: ['60'], env: {} }, () => {});
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
