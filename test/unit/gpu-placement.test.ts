import { describe, expect, it } from 'vitest';
import { gpuDeviceId, gpuShareMilli, type GpuDevice } from '../../pkg/model/index.js';
import {
  allocate,
  chooseNode,
  createPolicy,
  isPlaced,
  newNodeView,
  PassPlacer,
  pendingReason,
  policyNames,
  type JobRequest,
  type NodeView,
  type NoPlacement,
  type PlacementChoice,
} from '../../internal/scheduler/index.js';
import { seededRandom } from '../../internal/simulate/protocol.js';

const GiB = 2 ** 30;

function gpuNode(id: string, gpus: number, model = 'V100M16', labels: Record<string, string> = {}, cores = 64): NodeView {
  const devices: GpuDevice[] = Array.from({ length: gpus }, (_, index) => ({ index, uuid: `GPU-${id}-${index}`, model, memory: 16 * GiB }));
  return newNodeView({ id, capacity: { cpu: cores * 1000, memory: 256 * GiB, gpuMilli: gpus * 1000 }, gpus: devices, labels, executors: ['docker'] });
}

function gpuJob(id: string, gpuMilli: number, extra: Partial<JobRequest> = {}): JobRequest {
  return { id, kind: 'docker', resources: { cpu: 1000, memory: GiB, gpuMilli }, ...extra };
}

/** Places a job on the chosen node, as the master does; returns the choice. */
function placeOn(nodes: NodeView[], job: JobRequest, policy = createPolicy('binpack')): PlacementChoice | NoPlacement {
  const result = chooseNode(job, nodes, policy);
  if (isPlaced(result)) allocate(nodes.find((n) => n.id === result.nodeId) as NodeView, job.resources, result.gpuDevices);
  return result;
}

describe('device-level GPU allocation', () => {
  it('fractional jobs share one device up to 1000 milli and no further', () => {
    const nodes = [gpuNode('a', 1)];
    for (let i = 0; i < 4; i++) {
      expect(placeOn(nodes, gpuJob(`q${i}`, 250))).toMatchObject({ nodeId: 'a', gpuDevices: ['GPU-a-0'] });
    }
    expect(nodes[0].gpuFree).toEqual([0]);
    const fifth = placeOn(nodes, gpuJob('q4', 250));
    expect(isPlaced(fifth)).toBe(false);
    expect((fifth as NoPlacement).rejected).toEqual({ gpu: 1 });
  });

  it('a share goes to the fullest device it fits on, keeping whole devices free', () => {
    const nodes = [gpuNode('a', 2)];
    placeOn(nodes, gpuJob('big-share', 700));
    expect(placeOn(nodes, gpuJob('small', 300))).toMatchObject({ gpuDevices: ['GPU-a-0'] });
    expect(placeOn(nodes, gpuJob('whole', 1000))).toMatchObject({ gpuDevices: ['GPU-a-1'] });
  });

  it('whole-GPU jobs never take a partly used device', () => {
    const nodes = [gpuNode('a', 2)];
    placeOn(nodes, gpuJob('share', 100));
    expect(isPlaced(placeOn(nodes, gpuJob('two', 2000)))).toBe(false);
    expect(placeOn(nodes, gpuJob('one', 1000))).toMatchObject({ gpuDevices: ['GPU-a-1'] });
  });

  it('never oversubscribes a device, CPU or memory, under every policy (random job mixes)', () => {
    for (const policyName of policyNames()) {
      for (let seed = 1; seed <= 20; seed++) {
        const random = seededRandom(seed);
        const nodes = Array.from({ length: 1 + Math.floor(random() * 6) }, (_, i) =>
          gpuNode(`n${i}`, [0, 1, 2, 4, 8][Math.floor(random() * 5)], random() < 0.5 ? 'A100' : 'T4', {}, 4 + Math.floor(random() * 60)),
        );
        const policy = createPolicy(policyName);
        const placer = new PassPlacer(nodes, policy);
        const held = new Map<string, number>(); // device id → milli held, counted independently of the scheduler
        const cpu = new Map<string, number>();
        for (let j = 0; j < 200; j++) {
          const kind = random();
          const gpuMilli = kind < 0.2 ? 0 : kind < 0.6 ? 1 + Math.floor(random() * 999) : [1000, 2000, 4000, 8000][Math.floor(random() * 4)];
          const job: JobRequest = { id: `j${j}`, kind: 'docker', resources: { cpu: 500 + Math.floor(random() * 8000), memory: GiB, gpuMilli } };
          if (random() < 0.2) job.gpuModels = ['T4'];
          policy.observe(job);
          const result = placer.place(job);
          if (!isPlaced(result)) continue;
          const node = nodes.find((n) => n.id === result.nodeId) as NodeView;
          allocate(node, job.resources, result.gpuDevices);
          expect(result.gpuDevices.length).toBe(gpuMilli === 0 ? 0 : Math.max(1, gpuMilli / 1000));
          for (const id of result.gpuDevices) {
            held.set(id, (held.get(id) ?? 0) + gpuShareMilli(gpuMilli));
            const device = node.gpus.find((g) => gpuDeviceId(g) === id);
            expect(device).toBeDefined();
            if (job.gpuModels) expect(job.gpuModels).toContain(device?.model);
          }
          cpu.set(node.id, (cpu.get(node.id) ?? 0) + job.resources.cpu);
        }
        for (const [id, milli] of held) expect(milli, `${policyName} seed ${seed} device ${id}`).toBeLessThanOrEqual(1000);
        for (const node of nodes) {
          expect(cpu.get(node.id) ?? 0).toBeLessThanOrEqual(node.capacity.cpu);
          expect(Math.min(...node.gpuFree, 1000)).toBeGreaterThanOrEqual(0);
        }
      }
    }
  });
});

describe('constraints', () => {
  it('GPU models filter nodes, and the pending reason names the model', () => {
    const nodes = [gpuNode('t4', 4, 'T4'), gpuNode('v100', 4, 'V100M32')];
    expect(placeOn(nodes, gpuJob('v', 1000, { gpuModels: ['V100M16', 'V100M32'] }))).toMatchObject({ nodeId: 'v100' });
    const job = gpuJob('a100', 1000, { gpuModels: ['A100'] });
    const result = placeOn(nodes, job) as NoPlacement;
    expect(result.rejected).toEqual({ gpuModel: 2 });
    expect(pendingReason(job, result, nodes)).toBe('no registered node can ever run it: needs a GPU of model A100; waiting for such a node');
  });

  it('a node selector needs every label', () => {
    const nodes = [gpuNode('a', 1, 'T4', { zone: 'a' }), gpuNode('b', 1, 'T4', { zone: 'b', rack: 'r1' })];
    expect(placeOn(nodes, gpuJob('x', 0, { nodeSelector: { zone: 'b', rack: 'r1' } }))).toMatchObject({ nodeId: 'b' });
    const missing = placeOn(nodes, gpuJob('y', 0, { nodeSelector: { zone: 'c' } })) as NoPlacement;
    expect(missing.rejected).toEqual({ selector: 2 });
  });
});

describe('fragmentation-aware policy (fgd)', () => {
  it('puts a share where the devices left stay usable by the job mix', () => {
    // Node a has a device half used; node b is empty. With a mix of half-GPU
    // jobs, a 0.5 job belongs on a's half device: on b it would leave a half
    // device on a and another on b.
    const nodes = [gpuNode('a', 2), gpuNode('b', 2)];
    const fgd = createPolicy('fgd');
    for (let i = 0; i < 10; i++) fgd.observe(gpuJob(`mix${i}`, 500));
    allocate(nodes[0], gpuJob('old', 500).resources, ['GPU-a-1']);
    expect(chooseNode(gpuJob('half', 500), nodes, fgd)).toMatchObject({ nodeId: 'a', gpuDevices: ['GPU-a-1'] });
  });

  it('keeps whole devices for a mix of whole-GPU jobs', () => {
    // A 0.3 job: on a it lands on the partly used device; on b it would break a whole device.
    const nodes = [gpuNode('b', 2), gpuNode('a', 2)];
    const fgd = createPolicy('fgd');
    for (let i = 0; i < 10; i++) fgd.observe(gpuJob(`mix${i}`, 1000));
    allocate(nodes[1], gpuJob('old', 400).resources, ['GPU-a-0']);
    expect(chooseNode(gpuJob('small', 300), nodes, fgd)).toMatchObject({ nodeId: 'a', gpuDevices: ['GPU-a-0'] });
  });

  it('leans a CPU-only job towards the node with fewer free GPUs', () => {
    // Both nodes keep their free GPUs usable by the mix after the job, and their GPUs are as
    // full (half); a is the more allocated (a packing policy's pick), but b has 1 free GPU
    // against a's 4, so the CPU the job takes there could have fed fewer GPU jobs.
    const nodes = [gpuNode('a', 8), gpuNode('b', 2)];
    const fgd = createPolicy('fgd');
    for (let i = 0; i < 10; i++) fgd.observe(gpuJob(`mix${i}`, 1000));
    allocate(nodes[0], { cpu: 40_000, memory: GiB, gpuMilli: 4000 }, ['GPU-a-0', 'GPU-a-1', 'GPU-a-2', 'GPU-a-3']);
    allocate(nodes[1], gpuJob('one', 1000).resources, ['GPU-b-0']);
    expect(chooseNode(gpuJob('cpu', 0), nodes, createPolicy('binpack'))).toMatchObject({ nodeId: 'a' });
    expect(chooseNode(gpuJob('cpu', 0), nodes, fgd)).toMatchObject({ nodeId: 'b' });
  });

  it('keeps a GPU job off a node rich in CPU per GPU once CPU-only jobs take most of the CPU', () => {
    // a: 12 cores a GPU; b: 52, against the mix's 10. Both stay usable by the mix after the job;
    // GPU packing alone prefers b (its GPUs are fuller after).
    const nodes = (): NodeView[] => [gpuNode('a', 8, 'V100M16', {}, 96), gpuNode('b', 2, 'V100M16', {}, 104)];
    const job = (id: string, gpuMilli: number, cpu: number): JobRequest => ({ id, kind: 'docker', resources: { cpu, memory: GiB, gpuMilli } });
    const mixOf = (pairs: number, cpuOnlyCpu: number) => {
      const fgd = createPolicy('fgd');
      for (let i = 0; i < pairs; i++) {
        fgd.observe(job(`g${i}`, 1000, 10_000));
        if (cpuOnlyCpu > 0) fgd.observe(job(`c${i}`, 0, cpuOnlyCpu));
      }
      return fgd;
    };
    // 2/3 of the CPU in CPU-only jobs, measured on 256 submissions: b's CPU is left to them.
    expect(chooseNode(job('j', 1000, 10_000), nodes(), mixOf(150, 20_000))).toMatchObject({ nodeId: 'a' });
    // Without CPU-only jobs, or measured on too few submissions (64 here), packing decides.
    expect(chooseNode(job('j', 1000, 10_000), nodes(), mixOf(150, 0))).toMatchObject({ nodeId: 'b' });
    expect(chooseNode(job('j', 1000, 10_000), nodes(), mixOf(40, 20_000))).toMatchObject({ nodeId: 'b' });
  });

  it('packs like binpack while it has seen no GPU job', () => {
    const fgd = createPolicy('fgd');
    const cpuNodes = [gpuNode('a', 0, 'x', {}, 8), gpuNode('b', 0, 'x', {}, 8)];
    allocate(cpuNodes[1], { cpu: 4000, memory: GiB, gpuMilli: 0 }, []);
    expect(chooseNode(gpuJob('c', 0), cpuNodes, fgd)).toMatchObject({ nodeId: 'b' });
    expect(fgd.isMonotone(gpuJob('c', 0))).toBe(true);
  });
});
