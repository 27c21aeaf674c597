import type Docker from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { containerCreateOptions } from '../../internal/worker/docker-executor.js';
import { buildJobSpec, newJobId, type Assignment, type Job, type SubmitInput } from '../../pkg/model/index.js';
import { removeContainersByLabel, requireDocker, TEST_IMAGE } from '../harness/docker.js';
import { randomNodeId } from './helpers.js';

/**
 * The check that a GPU placement reaches Docker intact: a real
 * container created from the worker's create options carries a device
 * request for exactly the assigned ids. The test engine has no NVIDIA
 * runtime, so the container is created and inspected, never started (that
 * it then fails to start clearly is worker-docker.test.ts's business).
 */
describe('worker: GPU device requests on a real Docker engine', () => {
  let docker: Docker | undefined;
  const nodeId = randomNodeId();

  /** Throws when Docker or the test image is missing: each test then fails (not skips) saying so. */
  async function engine(): Promise<Docker> {
    docker ??= await requireDocker();
    return docker;
  }

  afterEach(async () => {
    if (docker) await removeContainersByLabel(docker, `titan.node=${nodeId}`);
  });

  function placed(input: SubmitInput, gpuDevices: string[]): { job: Job; assignment: Assignment } {
    const job: Job = { ...buildJobSpec(input), id: newJobId(), state: 'Scheduled', createdAt: Date.now(), attempt: 1, node: nodeId, gpuDevices };
    const assignment: Assignment = { jobId: job.id, nodeId, attempt: 1, resources: job.resources, gpuDevices, assignedAt: Date.now() };
    return { job, assignment };
  }

  async function createAndInspect(job: Job, assignment: Assignment): Promise<Docker.ContainerInspectInfo> {
    const container = await (await engine()).createContainer(containerCreateOptions(job, assignment, TEST_IMAGE, { nodeId, network: 'none' }));
    try {
      return await container.inspect();
    } finally {
      await container.remove({ force: true });
    }
  }

  it('a 2-GPU placement: DeviceRequests name exactly the assigned ids (nvidia, gpu capability)', async () => {
    const { job, assignment } = placed({ image: TEST_IMAGE, cmd: 'nvidia-smi -L', gpu: '2' }, ['GPU-aaaa', 'GPU-bbbb']);
    expect(assignment.resources.gpuMilli).toBe(2000);
    const info = await createAndInspect(job, assignment);

    expect(info.Name).toBe(`/titan-${job.id}-1`);
    const requests = info.HostConfig.DeviceRequests ?? [];
    expect(requests).toHaveLength(1);
    expect(requests[0].Driver).toBe('nvidia');
    expect(requests[0].DeviceIDs).toEqual(['GPU-aaaa', 'GPU-bbbb']);
    expect(requests[0].Capabilities).toEqual([['gpu']]);
    // Exact ids, not "any N devices": the engine must not pick devices itself.
    expect(requests[0].Count ?? 0).toBe(0);
    expect(info.Config.Env).toEqual(
      expect.arrayContaining(['NVIDIA_VISIBLE_DEVICES=GPU-aaaa,GPU-bbbb', 'CUDA_VISIBLE_DEVICES=GPU-aaaa,GPU-bbbb']),
    );
    expect(info.Config.Env.some((e) => e.startsWith('TITAN_GPU_SHARE='))).toBe(false);
    expect(await (await engine()).listContainers({ all: true, filters: { label: [`titan.job=${job.id}`] } })).toHaveLength(0);
  });

  it('a quarter-GPU placement: one device, and the share in TITAN_GPU_SHARE', async () => {
    const { job, assignment } = placed({ image: TEST_IMAGE, cmd: 'true', gpu: '0.25' }, ['GPU-cccc']);
    const info = await createAndInspect(job, assignment);
    expect(info.HostConfig.DeviceRequests?.map((r) => r.DeviceIDs)).toEqual([['GPU-cccc']]);
    expect(info.Config.Env).toEqual(expect.arrayContaining(['NVIDIA_VISIBLE_DEVICES=GPU-cccc', 'TITAN_GPU_SHARE=0.25']));
  });
});
