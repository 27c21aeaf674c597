import { StringDecoder } from 'node:string_decoder';
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from '../../pkg/log/logger.js';
import { TitanError, type Assignment, type Job, type LogStream } from '../../pkg/model/index.js';
import { errorMessage, titanEnv, type Execution, type ExecutionResult, type Executor, type OutputHandler } from './executor.js';
import { formatBytes } from './log-sink.js';

export interface DockerExecutorOptions {
  nodeId: string;
  /** NetworkMode of job containers; undefined leaves Docker's default. */
  network?: string;
  logger: Logger;
  /** How long the log stream may lag behind the container's exit before it is cut. */
  logDrainMs?: number;
}

/** Deterministic per attempt, so a later worker process can find the container again. */
export function containerName(jobId: string, attempt: number): string {
  return `titan-${jobId}-${attempt}`;
}

function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number } | undefined)?.statusCode;
}

/** Removes a container, ignoring "already gone" and "removal in progress". */
async function removeQuietly(container: Docker.Container): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
  } catch (err) {
    const code = statusCode(err);
    if (code !== 404 && code !== 409) throw err;
  }
}

/** A create/start failure, in words that say what to do about it. */
function startFailure(err: unknown, wantsGpu: boolean): TitanError {
  const message = errorMessage(err);
  if (wantsGpu && /device driver|nvidia|gpu|capabilit/i.test(message)) {
    return new TitanError(
      'Unavailable',
      `this node's Docker engine cannot run GPU containers (no NVIDIA runtime): ${message}`,
      { cause: err },
    );
  }
  return new TitanError('Internal', `container failed to start: ${message}`, { cause: err });
}

/** Runs docker jobs as containers of the engine at $DOCKER_HOST. */
export class DockerExecutor implements Executor {
  readonly kind = 'docker' as const;
  private readonly docker: Docker;
  private readonly options: DockerExecutorOptions;
  /** Concurrent jobs of one missing image share one pull. */
  private readonly pulls = new Map<string, Promise<void>>();

  constructor(docker: Docker, options: DockerExecutorOptions) {
    this.docker = docker;
    this.options = options;
  }

  async start(job: Job, assignment: Assignment, output: OutputHandler): Promise<Execution> {
    const image = job.image?.trim();
    if (!image) throw new TitanError('InvalidInput', 'a docker job needs an image');
    await this.ensureImage(image);
    const wantsGpu = assignment.gpuDevices.length > 0;
    const container = await this.create(job, assignment, image);
    try {
      await container.start();
    } catch (err) {
      await removeQuietly(container).catch(() => undefined);
      throw startFailure(err, wantsGpu);
    }
    return new DockerExecution(container, output, this.options.logDrainMs ?? 5000, job.resources.memory);
  }

  async abandon(job: Job, assignment: Assignment): Promise<void> {
    await removeQuietly(this.docker.getContainer(containerName(job.id, assignment.attempt)));
  }

  private ensureImage(image: string): Promise<void> {
    let pull = this.pulls.get(image);
    if (!pull) {
      pull = this.pullIfMissing(image).finally(() => this.pulls.delete(image));
      this.pulls.set(image, pull);
    }
    return pull;
  }

  private async pullIfMissing(image: string): Promise<void> {
    try {
      await this.docker.getImage(image).inspect();
      return;
    } catch (err) {
      if (statusCode(err) !== 404) throw new TitanError('Unavailable', `cannot inspect image ${image}: ${errorMessage(err)}`);
    }
    this.options.logger.info({ image }, 'pulling image');
    try {
      const stream = await this.docker.pull(image);
      await new Promise<void>((resolve, reject) => {
        // Registry errors arrive as progress messages on a 200 response, not as HTTP errors.
        this.docker.modem.followProgress(stream, (err, events: { error?: string; errorDetail?: { message?: string } }[]) => {
          const failed = events?.find((e) => e.error !== undefined || e.errorDetail !== undefined);
          if (err) reject(err);
          else if (failed) reject(new Error(failed.errorDetail?.message ?? failed.error));
          else resolve();
        });
      });
    } catch (err) {
      throw new TitanError('Unavailable', `image pull failed: ${errorMessage(err)}`, { cause: err });
    }
  }

  private async create(job: Job, assignment: Assignment, image: string): Promise<Docker.Container> {
    const env = { ...job.env, ...titanEnv(job, assignment) };
    const hostConfig: Docker.HostConfig = {
      NanoCpus: job.resources.cpu * 1e6,
      Memory: job.resources.memory,
    };
    if (this.options.network !== undefined) hostConfig.NetworkMode = this.options.network;
    if (assignment.gpuDevices.length > 0) {
      hostConfig.DeviceRequests = [{ Driver: 'nvidia', DeviceIDs: assignment.gpuDevices, Capabilities: [['gpu']] }];
    }
    const spec: Docker.ContainerCreateOptions = {
      name: containerName(job.id, assignment.attempt),
      Image: image,
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Labels: { 'titan.job': job.id, 'titan.attempt': String(assignment.attempt), 'titan.node': this.options.nodeId },
      HostConfig: hostConfig,
    };
    if (job.command.length > 0) spec.Cmd = job.command;
    const wantsGpu = assignment.gpuDevices.length > 0;
    try {
      return await this.docker.createContainer(spec);
    } catch (err) {
      if (statusCode(err) !== 409) throw startFailure(err, wantsGpu);
    }
    // A container of this very attempt is left over (an earlier process died before
    // cleaning up); nobody follows it, so replace it.
    this.options.logger.warn({ job: job.id, attempt: assignment.attempt }, 'replacing a leftover container of this attempt');
    await removeQuietly(this.docker.getContainer(containerName(job.id, assignment.attempt)));
    try {
      return await this.docker.createContainer(spec);
    } catch (err) {
      throw startFailure(err, wantsGpu);
    }
  }
}

/** Follows one started container: its output, its exit, and its removal. */
class DockerExecution implements Execution {
  readonly exited: Promise<ExecutionResult>;
  private readonly container: Docker.Container;
  private readonly output: OutputHandler;
  private readonly abort = new AbortController();
  private logStream: NodeJS.ReadableStream | undefined;
  private detached = false;

  constructor(container: Docker.Container, output: OutputHandler, logDrainMs: number, memoryLimit: number) {
    this.container = container;
    this.output = output;
    this.exited = this.follow(logDrainMs, memoryLimit);
  }

  async stop(graceMs: number): Promise<void> {
    try {
      // Docker sends SIGTERM, waits t seconds, then SIGKILL.
      await this.container.stop({ t: Math.max(0, Math.ceil(graceMs / 1000)) });
    } catch (err) {
      const code = statusCode(err);
      // 304: already stopped; 404: already removed; 409: removal in progress.
      if (code !== 304 && code !== 404 && code !== 409) throw new TitanError('Internal', `cannot stop container: ${errorMessage(err)}`);
    }
  }

  detach(): void {
    this.detached = true;
    this.abort.abort();
    destroy(this.logStream);
  }

  private async follow(logDrainMs: number, memoryLimit: number): Promise<ExecutionResult> {
    const logsEnded = this.streamLogs().catch(() => undefined);
    let result: ExecutionResult;
    try {
      const res = (await this.container.wait({ abortSignal: this.abort.signal })) as { StatusCode?: number; Error?: { Message?: string } | null };
      result = { exitCode: res.StatusCode ?? -1 };
      if (res.Error?.Message) result.error = res.Error.Message;
    } catch (err) {
      if (this.detached) return { exitCode: -1, error: 'detached' };
      result = { exitCode: -1, error: `lost track of the container: ${errorMessage(err)}` };
    }
    // The log stream ends right after the exit; one that hangs must not hold the job.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([logsEnded, new Promise((resolve) => (timer = setTimeout(resolve, logDrainMs)))]);
    clearTimeout(timer);
    destroy(this.logStream);
    if (this.detached) return { exitCode: -1, error: 'detached' };
    if (result.exitCode === 137 && (await this.oomKilled())) {
      result.error = `exited with code 137: out of memory (the job's limit is ${formatBytes(memoryLimit)})`;
    }
    await removeQuietly(this.container).catch(() => undefined);
    return result;
  }

  private async oomKilled(): Promise<boolean> {
    try {
      return (await this.container.inspect()).State.OOMKilled === true;
    } catch {
      return false;
    }
  }

  /** Resolves when the follow stream ended: all output of the container was delivered. */
  private async streamLogs(): Promise<void> {
    const stream = await this.container.logs({ follow: true, stdout: true, stderr: true });
    this.logStream = stream;
    if (this.detached) {
      destroy(stream);
      return;
    }
    const stdout = decodingWriter('stdout', this.output);
    const stderr = decodingWriter('stderr', this.output);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        stdout.flush();
        stderr.flush();
        resolve();
      };
      stream.once('end', done);
      stream.once('close', done);
      stream.once('error', done);
      (this.container.modem as Docker['modem']).demuxStream(stream, stdout.writable, stderr.writable);
    });
  }
}

/** A Writable that hands text to `output`, never splitting a UTF-8 character across calls. */
function decodingWriter(name: LogStream, output: OutputHandler): { writable: Writable; flush(): void } {
  const decoder = new StringDecoder('utf8');
  let flushed = false;
  return {
    writable: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        const text = decoder.write(chunk);
        if (text) output(name, text);
        callback();
      },
    }),
    flush() {
      if (flushed) return;
      flushed = true;
      const rest = decoder.end();
      if (rest) output(name, rest);
    },
  };
}

function destroy(stream: NodeJS.ReadableStream | undefined): void {
  (stream as { destroy?: () => void } | undefined)?.destroy?.();
}
