/**
 * The worker's process launcher (process-launcher.ts starts it): a small
 * Node.js process that starts shell jobs on the worker's request, over its
 * IPC channel, and sends back their pid, output and exit. libuv forks
 * synchronously, and a fork costs more the more memory the forking process
 * holds: done here, it costs the worker's event loop nothing. It imports
 * nothing but Node and process-group.js, so its heap stays small.
 *
 * Its jobs die with it: when the worker is gone (the IPC channel closed, or
 * the parent-death SIGTERM the worker starts it under), it SIGKILLs the
 * process group of every job it started and exits. A launcher killed alone
 * leaves that to the worker (ProcessLauncher.lost).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { LaunchRequest, LauncherMessage } from './process-launcher.js';
import { killProcessGroup, processStartTime } from './process-group.js';

/** The jobs started and not yet closed, by pid (their group's id), with their start times. */
const running = new Map<number, string | undefined>();

function send(message: LauncherMessage): void {
  // A closed channel means the worker is gone: the disconnect handler below ends this process.
  if (process.connected) process.send?.(message);
}

function launch(request: LaunchRequest): void {
  const { id } = request;
  let child: ChildProcess;
  try {
    child = spawn(request.file, request.args, {
      env: request.env,
      // Its own process group (and session), so signals reach everything the job started.
      detached: true,
      ...(request.user ? { uid: request.user.uid, gid: request.user.gid, cwd: request.user.cwd } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    send({ type: 'failed', id, message: (err as Error).message });
    return;
  }
  let spawned = false;
  child.on('error', (err) => {
    // After the spawn, an error is a failed kill: nothing to tell.
    if (!spawned) send({ type: 'failed', id, message: err.message });
  });
  child.once('spawn', () => {
    spawned = true;
    const pid = child.pid ?? 0;
    // Read now: the process may already have ended, but it is not reaped before this handler returns.
    const procStart = processStartTime(pid);
    running.set(pid, procStart);
    send({ type: 'spawned', id, pid, procStart: procStart ?? null });
  });
  for (const stream of ['stdout', 'stderr'] as const) {
    const pipe = child[stream];
    pipe?.setEncoding('utf8'); // decodes across chunk boundaries
    pipe?.on('data', (text: string) => send({ type: 'output', id, stream, text }));
  }
  // 'close' comes after both pipes ended: every output message went before it.
  child.once('close', (code, signal) => {
    if (child.pid !== undefined) running.delete(child.pid);
    if (spawned) send({ type: 'closed', id, code, signal });
  });
}

process.on('message', (request: LaunchRequest) => launch(request));
/** The worker is gone: so are its jobs, and this launcher. */
function exitWithJobs(): never {
  for (const [pid, procStart] of running) killProcessGroup(pid, procStart);
  process.exit(0);
}

process.on('disconnect', exitWithJobs);
process.on('SIGTERM', exitWithJobs);
