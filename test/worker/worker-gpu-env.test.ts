import { describe, expect, it } from 'vitest';
import { containerCreateOptions } from '../../internal/worker/docker-executor.js';
import { runEnv, titanEnv } from '../../internal/worker/executor.js';
import { buildJobSpec, gangPeers, type Assignment, type Job, type SubmitInput } from '../../pkg/model/index.js';

function jobOf(input: SubmitInput): Job {
  return { ...buildJobSpec(input), id: '01ABCDEFGHJKM', state: 'Scheduled', createdAt: 1, attempt: 1, node: 'gpu-1' };
}

function assignmentOf(job: Job, gpuDevices: string[]): Assignment {
  return { jobId: job.id, nodeId: 'gpu-1', attempt: 1, resources: job.resources, gpuDevices, assignedAt: 1 };
}

describe('titanEnv: GPU variables', () => {
  it('a CPU job gets no GPU variables', () => {
    const job = jobOf({ image: 'busybox' });
    expect(titanEnv(job, assignmentOf(job, []))).toEqual({ TITAN_JOB_ID: job.id, TITAN_ATTEMPT: '1', TITAN_NODE_ID: 'gpu-1' });
  });

  it('whole GPUs: the assigned ids, and no share', () => {
    const job = jobOf({ image: 'cuda', gpu: '2' });
    const env = titanEnv(job, assignmentOf(job, ['GPU-aaaa', 'GPU-bbbb']));
    expect(env).toMatchObject({ NVIDIA_VISIBLE_DEVICES: 'GPU-aaaa,GPU-bbbb', CUDA_VISIBLE_DEVICES: 'GPU-aaaa,GPU-bbbb' });
    expect(env).not.toHaveProperty('TITAN_GPU_SHARE');
  });

  it('exactly one whole GPU is not a share', () => {
    const job = jobOf({ image: 'cuda', gpu: '1' });
    expect(titanEnv(job, assignmentOf(job, ['3']))).not.toHaveProperty('TITAN_GPU_SHARE');
  });

  it.each([
    ['0.25', '0.25'],
    ['0.5', '0.5'],
    ['0.125', '0.125'],
  ])('a share of one GPU (%s): its device and TITAN_GPU_SHARE=%s', (gpu, share) => {
    const job = jobOf({ image: 'cuda', gpu });
    const env = titanEnv(job, assignmentOf(job, ['GPU-cccc']));
    expect(env).toMatchObject({ NVIDIA_VISIBLE_DEVICES: 'GPU-cccc', CUDA_VISIBLE_DEVICES: 'GPU-cccc', TITAN_GPU_SHARE: share });
  });

  it('a job env naming a GPU or Titan variable (a record written around titan submit) gets no container spec', () => {
    const forged: Record<string, string>[] = [{ TITAN_GPU_SHARE: '1' }, { CUDA_VISIBLE_DEVICES: '0' }, { NVIDIA_VISIBLE_DEVICES: 'all' }];
    for (const env of forged) {
      const job = { ...jobOf({ image: 'cuda', gpu: '0.25' }), env };
      expect(() => containerCreateOptions(job, assignmentOf(job, ['GPU-cccc']), 'cuda', { nodeId: 'gpu-1' })).toThrow(
        new RegExp(`env ${Object.keys(env)[0]} is reserved`),
      );
    }
  });

  it('a container without GPUs gets NVIDIA_VISIBLE_DEVICES=void, so no runtime hands it the host\'s GPUs', () => {
    const job = jobOf({ image: 'busybox' });
    expect(containerCreateOptions(job, assignmentOf(job, []), 'busybox', { nodeId: 'n' }).Env).toContain('NVIDIA_VISIBLE_DEVICES=void');
    const gpuJob = jobOf({ image: 'cuda', gpu: '1' });
    expect(containerCreateOptions(gpuJob, assignmentOf(gpuJob, ['3']), 'cuda', { nodeId: 'n' }).Env).toContain('NVIDIA_VISIBLE_DEVICES=3');
  });
});

describe('containerCreateOptions', () => {
  it('requests exactly the assigned devices from the nvidia driver', () => {
    const job = jobOf({ image: 'cuda', gpu: '2', cpu: '500m', memory: '1Gi', cmd: 'nvidia-smi' });
    const spec = containerCreateOptions(job, assignmentOf(job, ['GPU-aaaa', 'GPU-bbbb']), 'cuda', { nodeId: 'gpu-1', network: 'none' });
    expect(spec).toMatchObject({
      name: `titan-${job.id}-1`,
      Image: 'cuda',
      Cmd: ['/bin/sh', '-c', 'nvidia-smi'],
      Labels: { 'titan.job': job.id, 'titan.attempt': '1', 'titan.node': 'gpu-1' },
      HostConfig: {
        NanoCpus: 500 * 1e6,
        Memory: 2 ** 30,
        NetworkMode: 'none',
        DeviceRequests: [{ Driver: 'nvidia', DeviceIDs: ['GPU-aaaa', 'GPU-bbbb'], Capabilities: [['gpu']] }],
      },
    });
    expect(spec.HostConfig?.DeviceRequests?.[0]).not.toHaveProperty('Count');
  });

  it('a share of one GPU requests that one device', () => {
    const job = jobOf({ image: 'cuda', gpu: '0.25' });
    const spec = containerCreateOptions(job, assignmentOf(job, ['GPU-cccc']), 'cuda', { nodeId: 'gpu-1' });
    expect(spec.HostConfig?.DeviceRequests).toEqual([{ Driver: 'nvidia', DeviceIDs: ['GPU-cccc'], Capabilities: [['gpu']] }]);
  });

  it('a CPU job has no device request, no Cmd for the image default, and Docker\'s default network', () => {
    const job = jobOf({ image: 'busybox' });
    const spec = containerCreateOptions(job, assignmentOf(job, []), 'busybox', { nodeId: 'n' });
    expect(spec.HostConfig).not.toHaveProperty('DeviceRequests');
    expect(spec.HostConfig).not.toHaveProperty('NetworkMode');
    expect(spec).not.toHaveProperty('Cmd');
  });
});

describe('titanEnv: gang variables', () => {
  function replicaOf(rank: number): Job {
    return { ...jobOf({ image: 'trainer', gpu: '2' }), gang: { id: '01GANGGANGGAN', rank, size: 3, minAvailable: 3 } };
  }

  it('a replica gets its rank, the group size and id, its peers in rank order and its own port', () => {
    const job = replicaOf(1);
    const members = [
      { rank: 0, nodeId: 'gpu-1', port: 29500 },
      { rank: 1, nodeId: 'gpu-1', port: 29503 },
      { rank: 2, nodeId: 'gpu-2', port: 29500 },
    ];
    const peers = gangPeers(3, members, { 'gpu-1': '10.0.0.1', 'gpu-2': '10.0.0.2' });
    const assignment: Assignment = { ...assignmentOf(job, ['GPU-a', 'GPU-b']), peers, port: 29503, rank: 1, localRank: 1 };
    expect(titanEnv(job, assignment)).toEqual({
      TITAN_JOB_ID: job.id,
      TITAN_ATTEMPT: '1',
      TITAN_NODE_ID: 'gpu-1',
      NVIDIA_VISIBLE_DEVICES: 'GPU-a,GPU-b',
      CUDA_VISIBLE_DEVICES: 'GPU-a,GPU-b',
      TITAN_GANG_ID: '01GANGGANGGAN',
      TITAN_RANK: '1',
      TITAN_WORLD_SIZE: '3',
      TITAN_PEERS: '10.0.0.1:29500,10.0.0.1:29503,10.0.0.2:29500',
      TITAN_PORT: '29503',
    });
    // The conventions frameworks read: rank 0's address and port, the rank, the size, the rank on this node.
    expect(runEnv(job, assignment)).toMatchObject({ MASTER_ADDR: '10.0.0.1', MASTER_PORT: '29500', RANK: '1', WORLD_SIZE: '3', LOCAL_RANK: '1' });
  });

  it("the job's own MASTER_PORT or RANK wins (they are not reserved); MASTER_ADDR of an IPv6 rank 0 has no brackets", () => {
    const job = { ...replicaOf(0), env: { MASTER_PORT: '1234', RANK: 'mine' } };
    const env = runEnv(job, { ...assignmentOf(job, []), peers: ['[fd00::1]:29500', '', ''], port: 29500, rank: 0, localRank: 0 });
    expect(env).toMatchObject({ MASTER_ADDR: 'fd00::1', MASTER_PORT: '1234', RANK: 'mine', WORLD_SIZE: '3', LOCAL_RANK: '0', TITAN_PORT: '29500' });
  });

  it('an older master (peers without a port field): TITAN_PORT from its own entry; no LOCAL_RANK', () => {
    const job = replicaOf(2);
    const env = runEnv(job, { ...assignmentOf(job, []), peers: ['h1:29500', 'h1:29501', 'h2:29502'] });
    expect(env).toMatchObject({ TITAN_PORT: '29502', MASTER_ADDR: 'h1', MASTER_PORT: '29500', RANK: '2' });
    expect(env).not.toHaveProperty('LOCAL_RANK');
  });

  it('rank 0 not placed yet (a gang started below N): no MASTER_ADDR or MASTER_PORT', () => {
    const job = replicaOf(1);
    const env = runEnv(job, { ...assignmentOf(job, []), peers: ['', 'h1:29500', ''], port: 29500, localRank: 0 });
    expect(env).not.toHaveProperty('MASTER_ADDR');
    expect(env).not.toHaveProperty('MASTER_PORT');
    expect(env).toMatchObject({ TITAN_PORT: '29500', RANK: '1' });
  });

  it('reach the container; a job env that sets one is refused', () => {
    const job = replicaOf(0);
    const spec = containerCreateOptions(job, { ...assignmentOf(job, []), peers: ['h1:29500', '', ''] }, 'trainer', { nodeId: 'gpu-1' });
    expect(spec.Env).toEqual(expect.arrayContaining(['TITAN_RANK=0', 'TITAN_WORLD_SIZE=3', 'TITAN_PEERS=h1:29500,,', 'TITAN_PORT=29500']));
    const forged = { ...job, env: { TITAN_RANK: '7' } };
    expect(() => containerCreateOptions(forged, assignmentOf(forged, []), 'trainer', { nodeId: 'gpu-1' })).toThrow(/env TITAN_RANK is reserved/);
  });

  it("publishes the replica's port at the same number on Docker's default or a named network; not on host or none", () => {
    const job = replicaOf(1);
    const assignment: Assignment = { ...assignmentOf(job, []), peers: ['h1:29500', 'h1:29501', ''], port: 29501 };
    for (const network of [undefined, 'trainnet']) {
      const spec = containerCreateOptions(job, assignment, 'trainer', { nodeId: 'gpu-1', ...(network ? { network } : {}) });
      expect(spec.ExposedPorts).toEqual({ '29501/tcp': {} });
      expect(spec.HostConfig?.PortBindings).toEqual({ '29501/tcp': [{ HostPort: '29501' }] });
    }
    for (const network of ['host', 'none', 'container:abc']) {
      const spec = containerCreateOptions(job, assignment, 'trainer', { nodeId: 'gpu-1', network });
      expect(spec).not.toHaveProperty('ExposedPorts');
      expect(spec.HostConfig).not.toHaveProperty('PortBindings');
    }
    // An older master's assignment carries no port: nothing is published.
    expect(containerCreateOptions(job, { ...assignment, port: undefined }, 'trainer', { nodeId: 'gpu-1' })).not.toHaveProperty('ExposedPorts');
  });

  it('without peers in the assignment (an older master): rank and size only', () => {
    const job = replicaOf(2);
    const env = titanEnv(job, assignmentOf(job, []));
    expect(env).toMatchObject({ TITAN_RANK: '2', TITAN_WORLD_SIZE: '3', TITAN_GANG_ID: '01GANGGANGGAN' });
    expect(env).not.toHaveProperty('TITAN_PEERS');
    expect(env).not.toHaveProperty('TITAN_PORT');
  });

  it('a job outside a gang gets none of them', () => {
    const job = jobOf({ image: 'busybox' });
    expect(Object.keys(runEnv(job, assignmentOf(job, []))).filter((k) => /GANG|RANK|PEERS|WORLD|PORT|MASTER/.test(k))).toEqual([]);
  });
});
