import type Docker from 'dockerode';
import { TitanError, type LogOffsets } from '../../pkg/model/index.js';
import { DockerStreamReader } from './docker-logs.js';
import { errorMessage, type Execution, type ExecutionResult, type OutputHandler, type RunHandle } from './executor.js';
import { formatBytes } from './log-sink.js';
import { CONTAINER_REMOVED_REASON } from '../../pkg/model/index.js';
import { ImagePullTimeoutError, statusCode } from './docker-errors.js';
import { retryCall } from '../../pkg/concurrency/call-retry.js';

/** How long release() waits for Docker to confirm a removal. */
const REMOVAL_CONFIRM_MS = 30_000;
/** A wait() that broke while the container still runs is re-issued this often before giving up on it. */
const MAX_WAIT_TRIES = 5;
/** 128 + SIGKILL. */
const SIGKILL_EXIT_CODE = 137;
/**
 * How long one create, start or inspect may take before the engine counts as
 * hung: a busy engine answers within seconds, so this only catches a stuck one.
 */
export const DOCKER_CALL_TIMEOUT_MS = 60_000;

/** A pull slower than this fails the run (worker --pull-timeout): a registry that accepts and never answers would hold the job forever. */
export const DEFAULT_PULL_TIMEOUT_MS = 5 * 60_000;
export function pullTimeoutError(image: string, ms: number): TitanError {
  return new ImagePullTimeoutError(image, ms);
}

/** A Docker call that did not answer within its deadline (the request is aborted). */
export class DockerDeadlineError extends TitanError {
  constructor(what: string, ms: number) {
    super('Unavailable', `Docker did not answer ${what} within ${ms / 1000} s; is the engine hung?`);
  }
}

/**
 * Runs one Docker call with a deadline: past it the request is aborted and
 * the call rejects with DockerDeadlineError (or the error `onTimeout` makes),
 * even if the engine never closes the connection.
 */
export async function withDeadline<T>(
  what: string,
  ms: number,
  call: (signal: AbortSignal) => Promise<T>,
  onTimeout: () => Error = () => new DockerDeadlineError(what, ms),
): Promise<T> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(onTimeout());
      abort.abort();
    }, ms);
  });
  try {
    return await Promise.race([call(abort.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Removes a container, ignoring "already gone" and "removal in progress".
 * True when it is confirmed gone: Docker answers a removal only once it is
 * done, or says there is no such container; 409 (another removal under way) is
 * not a confirmation.
 */
export async function removeQuietly(container: Docker.Container): Promise<boolean> {
  try {
    await container.remove({ force: true, v: true });
    return true;
  } catch (err) {
    const code = statusCode(err);
    if (code !== 404 && code !== 409) throw err;
    return code === 404;
  }
}

type ContainerState = { gone: true } | { gone: false; status: string; running: boolean; exitCode: number; oomKilled: boolean };

async function inspectState(container: Docker.Container): Promise<ContainerState> {
  try {
    const { State } = await withDeadline('an inspect', DOCKER_CALL_TIMEOUT_MS, (abortSignal) => container.inspect({ abortSignal }));
    return { gone: false, status: State.Status, running: State.Running, exitCode: State.ExitCode, oomKilled: State.OOMKilled };
  } catch (err) {
    if (statusCode(err) === 404) return { gone: true };
    throw err;
  }
}

/** A removal is under way (Docker said 409) and not done yet; past REMOVAL_CONFIRM_MS, release() fails with it. */
class RemovalPendingError extends TitanError {
  constructor(id: string) {
    super('Internal', `container ${id} still exists ${REMOVAL_CONFIRM_MS / 1000} s after its removal`);
  }
}

/** A wait() that ended (or broke) while the container still runs; the cause is the wait's error, if any. */
class StillRunningError extends Error {
  constructor(cause: unknown) {
    super('the container still runs', { cause });
  }
}

/** Removed, or being removed: while we follow a container, only someone else does that. */
function removedOutside(state: ContainerState): boolean {
  return state.gone || state.status === 'removing' || state.status === 'dead';
}

export interface DockerExecutionOptions {
  output: OutputHandler;
  /** How long the log stream may lag behind the container's exit before it is cut. */
  logDrainMs: number;
  memoryLimit: number;
  startedAt: number;
  /**
   * The container's output, attached before it started: read live, without
   * Docker's log files in the way. Absent when re-attaching: the output is
   * then replayed from Docker's log.
   */
  attached?: NodeJS.ReadableStream;
  /** Re-attached: per stream, the bytes of output already stored; only what follows is new. */
  skip?: LogOffsets;
  /** Re-attached to a container that already exited: read what is left, do not follow. */
  alreadyExited?: boolean;
}

/** Follows one container: its output, its end, and finally its removal. */
export class DockerExecution implements Execution {
  readonly exited: Promise<ExecutionResult>;
  readonly startedAt: number;
  readonly handle: RunHandle;
  private readonly container: Docker.Container;
  private readonly options: DockerExecutionOptions;
  private readonly abort = new AbortController();
  private logStream: NodeJS.ReadableStream | undefined;
  private detached = false;
  /** Resolves when the container stopped (before its output is drained). */
  private readonly stopped: Promise<void>;
  private markStopped: () => void = () => undefined;

  constructor(container: Docker.Container, options: DockerExecutionOptions) {
    this.container = container;
    this.options = options;
    this.startedAt = options.startedAt;
    this.handle = { containerId: container.id };
    this.stopped = new Promise((resolve) => (this.markStopped = resolve));
    this.exited = options.alreadyExited ? this.collect() : this.follow();
    void this.exited.finally(() => this.markStopped());
  }

  async stop(graceMs: number): Promise<void> {
    if (graceMs > 0) {
      await this.signal('SIGTERM');
      if (await this.stopsWithin(graceMs)) return;
    }
    await this.signal('SIGKILL');
  }

  async release(): Promise<void> {
    if (await removeQuietly(this.container)) return;
    // 409 means a removal is already under way: resources are free only once it finished.
    await retryCall(
      async () => {
        if ((await inspectState(this.container).catch(() => undefined))?.gone) return;
        if (await removeQuietly(this.container).catch(() => false)) return;
        throw new RemovalPendingError(this.container.id);
      },
      { retryable: (err) => err instanceof RemovalPendingError, initialDelayMs: 100, maxDelayMs: 1000, budgetMs: REMOVAL_CONFIRM_MS },
    );
  }

  detach(): void {
    this.detached = true;
    this.abort.abort();
    destroy(this.logStream);
  }

  private async signal(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    try {
      await this.container.kill({ signal });
    } catch (err) {
      // 304/409: not running any more; 404: already removed.
      const code = statusCode(err);
      if (code !== 304 && code !== 404 && code !== 409) throw new TitanError('Internal', `cannot stop container: ${errorMessage(err)}`);
    }
  }

  private async stopsWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const stopped = await Promise.race([this.stopped.then(() => true), timeout]);
    clearTimeout(timer);
    return stopped;
  }

  private async follow(): Promise<ExecutionResult> {
    const logsEnded = this.streamLogs().catch(() => undefined);
    const result = await this.waitForEnd();
    this.markStopped();
    // The log stream ends right after the exit; one that hangs must not hold the job.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([logsEnded, new Promise((resolve) => (timer = setTimeout(resolve, this.options.logDrainMs)))]);
    clearTimeout(timer);
    destroy(this.logStream);
    return result;
  }

  /** A container that exited while no worker followed it: its remaining output, its exit code from inspect. */
  private async collect(): Promise<ExecutionResult> {
    try {
      const reader = new DockerStreamReader(this.options.output, this.options.skip);
      reader.push(await this.container.logs({ follow: false, stdout: true, stderr: true }));
      reader.end();
      return this.resultOf(await inspectState(this.container));
    } catch (err) {
      return { type: 'lost', reason: statusCode(err) === 404 ? CONTAINER_REMOVED_REASON : `lost track of the container: ${errorMessage(err)}` };
    }
  }

  /**
   * The container's end. wait() returns when it stops; whether it stopped on
   * its own or was removed from outside (docker rm -f kills, then removes)
   * only inspect can tell. A wait() that broke while the container still runs
   * is simply issued again.
   */
  private async waitForEnd(): Promise<ExecutionResult> {
    try {
      // Any failure is tried again (a wait or inspect cut by a busy engine), a few times.
      return await retryCall(() => this.waitOnce(), {
        retryable: () => !this.detached,
        retries: MAX_WAIT_TRIES - 1,
        initialDelayMs: 100,
        maxDelayMs: 400,
      });
    } catch (err) {
      if (this.detached) return { type: 'lost', reason: 'detached' };
      const last = err instanceof StillRunningError ? err.cause : err;
      return { type: 'lost', reason: `lost track of the container: ${errorMessage(last)}` };
    }
  }

  /** One wait(), then inspect when the exit code does not say it all; StillRunningError when the wait broke while the container runs. */
  private async waitOnce(): Promise<ExecutionResult> {
    let exitCode: number | undefined;
    let waitError: unknown;
    try {
      const reply = (await this.container.wait({ abortSignal: this.abort.signal })) as { StatusCode?: number; Error?: unknown };
      // An answer with an error (the engine going away, say) is no exit: inspect decides.
      if (reply.Error == null && typeof reply.StatusCode === 'number' && reply.StatusCode >= 0) exitCode = reply.StatusCode;
    } catch (err) {
      waitError = err;
    }
    if (this.detached) return { type: 'lost', reason: 'detached' };
    // A plain exit needs no inspect. 137 (SIGKILL) may be the OOM killer or a
    // removal from outside (rm -f kills first), which only inspect tells apart.
    if (exitCode !== undefined && exitCode !== SIGKILL_EXIT_CODE) return { type: 'exited', exitCode };
    const state = await inspectState(this.container);
    if (state.gone || removedOutside(state) || !state.running) return this.resultOf(state);
    throw new StillRunningError(waitError);
  }

  private resultOf(state: ContainerState): ExecutionResult {
    if (state.gone || removedOutside(state)) return { type: 'lost', reason: CONTAINER_REMOVED_REASON };
    if (state.exitCode === SIGKILL_EXIT_CODE && state.oomKilled) {
      return {
        type: 'exited',
        exitCode: 137,
        detail: `exited with code 137: out of memory (the job's limit is ${formatBytes(this.options.memoryLimit)})`,
      };
    }
    return { type: 'exited', exitCode: state.exitCode };
  }

  /**
   * Resolves when the output stream ended: all output of the container was
   * delivered. A live run reads the stream attached before it started (Docker's
   * log replay costs the engine several times more: it parses its log file
   * back); a re-attached one follows Docker's log from the start, skipping
   * what is stored.
   */
  private async streamLogs(): Promise<void> {
    const stream = this.options.attached ?? (await this.container.logs({ follow: true, stdout: true, stderr: true }));
    this.logStream = stream;
    if (this.detached) {
      destroy(stream);
      return;
    }
    const reader = new DockerStreamReader(this.options.output, this.options.skip);
    await new Promise<void>((resolve) => {
      let ended = false;
      const done = (): void => {
        if (ended) return;
        ended = true;
        reader.end();
        resolve();
      };
      stream.on('data', (data: Buffer) => {
        if (!this.detached) reader.push(data);
      });
      stream.once('end', done);
      stream.once('close', done);
      stream.once('error', done);
    });
  }
}

/** Closes a Docker output stream (attached or followed), if any. */
export function destroy(stream: NodeJS.ReadableStream | undefined): void {
  (stream as { destroy?: () => void } | undefined)?.destroy?.();
}
