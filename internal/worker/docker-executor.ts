import type Docker from 'dockerode';
import type { Logger } from '../../pkg/log/logger.js';
import { TitanError, type Assignment, type Job, type LogOffsets } from '../../pkg/model/index.js';
import { Semaphore } from '../../pkg/concurrency/semaphore.js';
import {
  DEFAULT_PULL_TIMEOUT_MS,
  destroy,
  DOCKER_CALL_TIMEOUT_MS,
  DockerExecution,
  pullTimeoutError,
  removeQuietly,
  withDeadline,
  type DockerExecutionOptions,
} from './docker-execution.js';
import { ImagePullTimeoutError, isMissingGpuRuntime, isMissingImage, isNotFound, statusCode } from './docker-errors.js';
import { DEFAULT_CONTAINER_BOX, type ContainerBox } from './container-box.js';
import { errorMessage, runEnv, type Execution, type Executor, type OutputHandler } from './executor.js';

export interface DockerExecutorOptions {
  nodeId: string;
  /** NetworkMode of job containers; undefined leaves Docker's default. */
  network?: string;
  logger: Logger;
  /** How long the log stream may lag behind the container's exit before it is cut. */
  logDrainMs?: number;
  /** Container creates and starts in flight at once; more wait their turn (see start()). */
  parallelStarts: number;
  /** How job containers are confined; default DEFAULT_CONTAINER_BOX. */
  box?: ContainerBox;
  /** An image pull that takes longer fails the run with ImagePullTimeout (default DEFAULT_PULL_TIMEOUT_MS). */
  pullTimeoutMs?: number;
  /** Deadline of one create, start or inspect (default DOCKER_CALL_TIMEOUT_MS). */
  callTimeoutMs?: number;
}

/** Deterministic per attempt, so a later worker process can find the container again. */
export function containerName(jobId: string, attempt: number): string {
  return `titan-${jobId}-${attempt}`;
}

/**
 * The Docker create request for one attempt: limits from the job's
 * resources, Titan's env and labels, and, for a GPU job, a device request
 * naming exactly the assigned devices (never a count: the scheduler chose
 * which devices, and a share of one device must land on that one). Pure, so
 * tests can create a container from it against any engine.
 */
export function containerCreateOptions(
  job: Job,
  assignment: Assignment,
  image: string,
  options: Pick<DockerExecutorOptions, 'nodeId' | 'network' | 'box'>,
): Docker.ContainerCreateOptions {
  const env = runEnv(job, assignment);
  // Without it, the NVIDIA runtime (when it is the engine's default) would give a CPU job every GPU of the host.
  if (assignment.gpuDevices.length === 0) env.NVIDIA_VISIBLE_DEVICES = 'void';
  const box = options.box ?? DEFAULT_CONTAINER_BOX;
  const hostConfig: Docker.HostConfig = {
    NanoCpus: job.resources.cpu * 1e6,
    Memory: job.resources.memory,
    // Equal to Memory: no swap, so a memory hog is killed at its limit instead of thrashing the host.
    MemorySwap: job.resources.memory,
    PidsLimit: box.pidsLimit,
    Privileged: false,
    CapDrop: ['ALL'],
    CapAdd: [...box.capAdd],
    SecurityOpt: ['no-new-privileges'],
    ReadonlyRootfs: box.readonlyRootfs,
  };
  // Scratch space for a read-only container; tmpfs pages count against its memory limit.
  if (box.readonlyRootfs) hostConfig.Tmpfs = { '/tmp': 'rw,nosuid,nodev,mode=1777' };
  if (options.network !== undefined) hostConfig.NetworkMode = options.network;
  const published = publishedPort(assignment, options.network);
  if (published !== undefined) hostConfig.PortBindings = { [published]: [{ HostPort: String(assignment.port) }] };
  if (assignment.gpuDevices.length > 0) {
    hostConfig.DeviceRequests = [{ Driver: 'nvidia', DeviceIDs: [...assignment.gpuDevices], Capabilities: [['gpu']] }];
  }
  const spec: Docker.ContainerCreateOptions = {
    name: containerName(job.id, assignment.attempt),
    Image: image,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { 'titan.job': job.id, 'titan.attempt': String(assignment.attempt), 'titan.node': options.nodeId },
    HostConfig: hostConfig,
  };
  if (box.user !== undefined) spec.User = box.user;
  if (job.command.length > 0) spec.Cmd = job.command;
  if (published !== undefined) spec.ExposedPorts = { [published]: {} };
  return spec;
}

/**
 * A gang replica's port (`<port>/tcp`) to publish on the host at the same
 * number, so peers reach it at the node's address: on Docker's default
 * network or a named one. On the host network it listens on the host's
 * ports already; on none (or another container's network) there is nothing
 * to publish to.
 */
function publishedPort(assignment: Assignment, network: string | undefined): string | undefined {
  if (assignment.port === undefined) return undefined;
  if (network === 'host' || network === 'none' || network?.startsWith('container:')) return undefined;
  return `${assignment.port}/tcp`;
}

/** The container's stdout and stderr from its start on; attached before start, so nothing is missed. */
async function attachOutput(container: Docker.Container): Promise<NodeJS.ReadableStream> {
  return (await container.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
}

/** A create/start failure, in words that say what to do about it. */
function startFailure(err: unknown, wantsGpu: boolean): TitanError {
  const message = errorMessage(err);
  if (wantsGpu && isMissingGpuRuntime(err)) {
    return new TitanError(
      'Unavailable',
      `this node's Docker engine cannot run GPU containers (no NVIDIA runtime): ${message}`,
      { cause: err },
    );
  }
  return new TitanError('Internal', `container failed to start: ${message}`, { cause: err });
}

/** A container created and started, with its output attached since before the start. */
interface Started {
  container: Docker.Container;
  attached: NodeJS.ReadableStream;
}

/** Runs docker jobs as containers of the engine at $DOCKER_HOST. */
export class DockerExecutor implements Executor {
  readonly kind = 'docker' as const;
  private readonly docker: Docker;
  private readonly options: DockerExecutorOptions;
  /** Concurrent jobs of one missing image share one pull. */
  private readonly pulls = new Map<string, Promise<void>>();
  private readonly starts: Semaphore;

  constructor(docker: Docker, options: DockerExecutorOptions) {
    this.docker = docker;
    this.options = options;
    this.starts = new Semaphore(options.parallelStarts);
  }

  /**
   * Creates and starts the attempt's container. A burst of assignments (a
   * bulk submit) would otherwise send every create and start to the engine at
   * once, and the engine gets through a hundred at once more slowly than a
   * few at a time: at most `parallelStarts` are in flight, the rest queue.
   * The image is pulled only when the create says the engine lacks it (no
   * lookup per job, which costs the engine as much as a create), and outside
   * that limit, so a pull holds no slot. A job no longer `wanted` when its
   * turn comes (cancelled while it queued) gets no container at all.
   */
  async start(job: Job, assignment: Assignment, output: OutputHandler, wanted: () => boolean = () => true): Promise<Execution | undefined> {
    const image = job.image?.trim();
    if (!image) throw new TitanError('InvalidInput', 'a docker job needs an image');
    runEnv(job, assignment); // a reserved env key fails the start before it takes a turn
    const wantsGpu = assignment.gpuDevices.length > 0;
    const startInTurn = () => this.starts.run(() => (wanted() ? this.createAndStart(job, assignment, image) : Promise.resolve(undefined)));
    let started: Started | undefined;
    try {
      started = await startInTurn();
    } catch (err) {
      if (!isMissingImage(err)) throw startFailure(err, wantsGpu);
      await this.pullShared(image);
      started = await startInTurn().catch((retryErr: unknown) => {
        throw startFailure(retryErr, wantsGpu);
      });
    }
    return started && this.execution(started.container, job, output, Date.now(), { attached: started.attached });
  }

  /** One create, attach and start; on a failure after the create, the container is removed. Docker's errors are passed on as they are. */
  private async createAndStart(job: Job, assignment: Assignment, image: string): Promise<Started> {
    const container = await this.createOnce(job, assignment, image);
    let attached: NodeJS.ReadableStream | undefined;
    try {
      attached = await attachOutput(container);
      await this.startContainer(container);
      return { container, attached };
    } catch (err) {
      destroy(attached);
      await removeQuietly(container).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Finds this attempt's container by its name and follows it again: a
   * running one from where the stored log ends, an exited one by reading
   * what is left of its output and its exit code.
   */
  async reattach(job: Job, assignment: Assignment, output: OutputHandler, skip: LogOffsets | undefined): Promise<Execution | undefined> {
    const container = this.docker.getContainer(containerName(job.id, assignment.attempt));
    let info: Docker.ContainerInspectInfo;
    try {
      info = await withDeadline('an inspect', this.callTimeoutMs, (abortSignal) => container.inspect({ abortSignal }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const labels = info.Config.Labels ?? {};
    if (labels['titan.job'] !== job.id || labels['titan.attempt'] !== String(assignment.attempt)) return undefined;
    if (info.State.Status === 'created') {
      // The earlier process died between create and start: nothing ran yet, so start it now.
      const attached = await attachOutput(container);
      await this.startContainer(container);
      return this.execution(container, job, output, Date.now(), { attached });
    }
    if (info.HostConfig.LogConfig?.Config?.['max-size'] !== undefined) {
      // The resume position counts bytes from the start of the container's log, which rotation drops.
      this.options.logger.warn(
        { job: job.id, logConfig: info.HostConfig.LogConfig },
        "the engine rotates container logs: if this container's log was rotated, the resumed log may miss or repeat output",
      );
    }
    const startedAt = Date.parse(info.State.StartedAt);
    return this.execution(container, job, output, Number.isNaN(startedAt) ? Date.now() : startedAt, {
      ...(skip !== undefined ? { skip } : {}),
      alreadyExited: !info.State.Running,
    });
  }

  async abandon(job: Job, assignment: Assignment): Promise<void> {
    await removeQuietly(this.docker.getContainer(containerName(job.id, assignment.attempt)));
  }

  /**
   * Removes this node's containers that belong to no current assignment (a
   * job ended or moved while no worker process watched): they are not ours
   * any more, and must not hold resources. Returns how many went.
   */
  async removeForeign(owned: (jobId: string, attempt: number) => boolean): Promise<number> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`titan.node=${this.options.nodeId}`] } });
    let removed = 0;
    for (const summary of list) {
      const jobId = summary.Labels['titan.job'] ?? '';
      const attempt = Number(summary.Labels['titan.attempt']);
      if (owned(jobId, attempt)) continue;
      this.options.logger.info({ job: jobId, attempt, container: summary.Id }, 'removing a container no assignment claims');
      await removeQuietly(this.docker.getContainer(summary.Id)).catch((err: unknown) => {
        this.options.logger.warn({ err, container: summary.Id }, 'could not remove a leftover container');
      });
      removed++;
    }
    return removed;
  }

  private execution(
    container: Docker.Container,
    job: Job,
    output: OutputHandler,
    startedAt: number,
    follow: Partial<Pick<DockerExecutionOptions, 'attached' | 'skip' | 'alreadyExited'>>,
  ): DockerExecution {
    return new DockerExecution(container, {
      output,
      logDrainMs: this.options.logDrainMs ?? 5000,
      memoryLimit: job.resources.memory,
      startedAt,
      ...follow,
    });
  }

  /** Pulls an image; concurrent jobs of one missing image share one pull. */
  private pullShared(image: string): Promise<void> {
    let pull = this.pulls.get(image);
    if (!pull) {
      pull = this.pull(image).finally(() => this.pulls.delete(image));
      this.pulls.set(image, pull);
    }
    return pull;
  }

  private get callTimeoutMs(): number {
    return this.options.callTimeoutMs ?? DOCKER_CALL_TIMEOUT_MS;
  }

  private startContainer(container: Docker.Container): Promise<unknown> {
    return withDeadline('a container start', this.callTimeoutMs, (abortSignal) => container.start({ abortSignal }));
  }

  /** The pull as a whole has a deadline: a registry may accept the connection and never answer. */
  private async pull(image: string): Promise<void> {
    const ms = this.options.pullTimeoutMs ?? DEFAULT_PULL_TIMEOUT_MS;
    this.options.logger.info({ image, timeoutMs: ms }, 'pulling image');
    try {
      await withDeadline('a pull', ms, (abortSignal) => this.pullOnce(image, abortSignal), () => pullTimeoutError(image, ms));
    } catch (err) {
      if (err instanceof ImagePullTimeoutError) throw err;
      throw new TitanError('Unavailable', `image pull failed: ${errorMessage(err)}`, { cause: err });
    }
  }

  private async pullOnce(image: string, abortSignal: AbortSignal): Promise<void> {
    const stream = await this.docker.pull(image, { abortSignal });
    await new Promise<void>((resolve, reject) => {
      // Registry errors arrive as progress messages on a 200 response, not as HTTP errors.
      this.docker.modem.followProgress(stream, (err, events: { error?: string; errorDetail?: { message?: string } }[]) => {
        const failed = events?.find((e) => e.error !== undefined || e.errorDetail !== undefined);
        if (err) reject(err);
        else if (failed) reject(new Error(failed.errorDetail?.message ?? failed.error));
        else resolve();
      });
    });
  }

  /** One create, replacing a leftover container of the same attempt; Docker's errors are passed on as they are. */
  private async createOnce(job: Job, assignment: Assignment, image: string): Promise<Docker.Container> {
    const spec = containerCreateOptions(job, assignment, image, this.options);
    const create = (): Promise<Docker.Container> =>
      withDeadline('a container create', this.callTimeoutMs, (abortSignal) => this.docker.createContainer({ ...spec, abortSignal }));
    try {
      return await create();
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
    }
    // A container of this very attempt is left over from a claim that never got
    // to record its start (the job was still Scheduled); nobody follows it, so replace it.
    this.options.logger.warn({ job: job.id, attempt: assignment.attempt }, 'replacing a leftover container of this attempt');
    await removeQuietly(this.docker.getContainer(containerName(job.id, assignment.attempt)));
    return create();
  }
}
