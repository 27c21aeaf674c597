import type Docker from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { DockerExecutor } from '../../internal/worker/docker-executor.js';
import { buildJobSpec, newJobId, type Assignment, type Job } from '../../pkg/model/index.js';
import { removeContainersByLabel, requireDocker, TEST_IMAGE } from '../harness/docker.js';
import { randomNodeId, testLogger } from './helpers.js';

type Start = () => Promise<unknown>;

/**
 * The real engine, with a count of the creates and starts in flight: from
 * the create request until the start of that container answered.
 */
function countingStarts(docker: Docker): { peak: () => number; creates: () => number } {
  let inFlight = 0;
  let peak = 0;
  let creates = 0;
  const create = docker.createContainer.bind(docker);
  docker.createContainer = async (spec: Docker.ContainerCreateOptions): Promise<Docker.Container> => {
    creates++;
    inFlight++;
    peak = Math.max(peak, inFlight);
    let container: Docker.Container;
    try {
      container = await create(spec);
    } catch (err) {
      inFlight--;
      throw err;
    }
    const start = (container.start as Start).bind(container);
    (container as { start: Start }).start = async () => {
      try {
        return await start();
      } finally {
        inFlight--;
      }
    };
    return container;
  };
  return { peak: () => peak, creates: () => creates };
}

describe('worker: container starts sent to the engine', () => {
  const nodeId = randomNodeId();
  let docker: Docker | undefined;

  afterEach(async () => {
    if (docker) await removeContainersByLabel(docker, `titan.node=${nodeId}`);
  });

  function echoJob(i: number): { job: Job; assignment: Assignment } {
    const job: Job = { ...buildJobSpec({ image: TEST_IMAGE, cmd: `echo run ${i}` }), id: newJobId(), state: 'Running', createdAt: Date.now(), attempt: 1, node: nodeId };
    const assignment: Assignment = { jobId: job.id, nodeId, attempt: 1, resources: job.resources, gpuDevices: [], assignedAt: Date.now() };
    return { job, assignment };
  }

  it('a burst of 6 starts reaches the engine at most parallelStarts (2) at a time, and all 6 run', async () => {
    docker = await requireDocker();
    const engine = countingStarts(docker);
    const executor = new DockerExecutor(docker, { nodeId, network: 'none', logger: testLogger, parallelStarts: 2 });
    const placed = Array.from({ length: 6 }, (_, i) => echoJob(i));
    const output = placed.map(() => [] as string[]);
    const executions = await Promise.all(placed.map(({ job, assignment }, i) => executor.start(job, assignment, (_stream, data) => output[i].push(data))));
    const started = executions.filter((e) => e !== undefined);
    expect(started).toHaveLength(6);
    const results = await Promise.all(started.map((e) => e.exited));
    await Promise.all(started.map((e) => e.release()));
    expect(engine.peak()).toBe(2);
    expect(results.map((r) => r.type === 'exited' && r.exitCode)).toEqual(Array(6).fill(0));
    expect(output.map((chunks) => chunks.join(''))).toEqual(placed.map((_, i) => `run ${i}\n`));
  }, 60_000);

  it('a start no longer wanted when its turn comes creates no container', async () => {
    docker = await requireDocker();
    const engine = countingStarts(docker);
    const executor = new DockerExecutor(docker, { nodeId, network: 'none', logger: testLogger, parallelStarts: 1 });
    const [first, queued] = [echoJob(0), echoJob(1)];
    let cancelled = false;
    const firstStart = executor.start(first.job, first.assignment, () => undefined);
    const queuedStart = executor.start(queued.job, queued.assignment, () => undefined, () => !cancelled);
    // The queued one waits behind the first; it is cancelled before its turn.
    cancelled = true;
    const [running, skipped] = await Promise.all([firstStart, queuedStart]);
    expect(skipped).toBeUndefined();
    expect(engine.creates()).toBe(1);
    expect(running).toBeDefined();
    await running?.exited;
    await running?.release();
  }, 60_000);
});
