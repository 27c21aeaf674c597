import { describe, expect, it } from 'vitest';
import { dominantShare, type GpuDevice, type Resources } from '../../pkg/model/index.js';
import {
  allocate,
  createPolicy,
  fairShares,
  FairShareOrder,
  fitsQueueLimit,
  isPlaced,
  newNodeView,
  PassPlacer,
  queueOrder,
  release,
  type NodeView,
  type QueueDemand,
  type QueuedJob,
  type QueueState,
} from '../../internal/scheduler/index.js';

const GI = 2 ** 30;
const res = (cpu: number, memoryGi: number, gpus: number): Resources => ({ cpu: cpu * 1000, memory: memoryGi * GI, gpuMilli: gpus * 1000 });
const gpus = (n: number): Resources => res(0, 0, n);
const ZERO = res(0, 0, 0);

function demand(name: string, fields: Partial<QueueDemand> = {}): QueueDemand {
  return { name, quota: ZERO, weight: 1, demand: ZERO, ...fields };
}

describe('fairShares', () => {
  it('gives every queue its quota first, then lends the rest by weight', () => {
    const shares = fairShares(gpus(10), [
      demand('a', { quota: gpus(6), demand: gpus(10) }),
      demand('b', { quota: gpus(2), demand: gpus(10) }),
    ]);
    expect(shares.get('a')).toEqual(gpus(7));
    expect(shares.get('b')).toEqual(gpus(3));
  });

  it('lends idle capacity in proportion to the weights', () => {
    const shares = fairShares(gpus(8), [demand('a', { weight: 1, demand: gpus(100) }), demand('b', { weight: 3, demand: gpus(100) })]);
    expect(shares.get('a')).toEqual(gpus(2));
    expect(shares.get('b')).toEqual(gpus(6));
  });

  it('never gives a queue more than its limit; what it cannot take goes to the others', () => {
    const shares = fairShares(gpus(10), [
      demand('a', { limit: { gpuMilli: 3000 }, demand: gpus(100) }),
      demand('b', { demand: gpus(100) }),
    ]);
    expect(shares.get('a')).toEqual(gpus(3));
    expect(shares.get('b')).toEqual(gpus(7));
  });

  it('gives nothing to a queue without demand, whatever its quota, and lends its quota to others', () => {
    const shares = fairShares(gpus(10), [demand('idle', { quota: gpus(8) }), demand('busy', { quota: gpus(2), demand: gpus(50) })]);
    expect(shares.get('idle')).toEqual(ZERO);
    expect(shares.get('busy')).toEqual(gpus(10));
  });

  it('gives a queue no more than its demand', () => {
    const shares = fairShares(gpus(10), [demand('small', { demand: gpus(1) }), demand('big', { demand: gpus(50) })]);
    expect(shares.get('small')).toEqual(gpus(1));
    expect(shares.get('big')).toEqual(gpus(9));
  });

  it('is dominant resource fair across CPU and memory (the DRF paper example)', () => {
    // 9 CPUs, 18 GB; A runs <1 CPU, 4 GB> tasks, B <3 CPU, 1 GB>: DRF gives A 3 tasks and B 2.
    const shares = fairShares(res(9, 18, 0), [demand('a', { demand: res(100, 400, 0) }), demand('b', { demand: res(300, 100, 0) })]);
    expect(shares.get('a')).toEqual(res(3, 12, 0));
    expect(shares.get('b')).toEqual(res(6, 2, 0));
    const a = shares.get('a') as Resources;
    const b = shares.get('b') as Resources;
    expect(dominantShare(a, res(9, 18, 0))).toBeCloseTo(dominantShare(b, res(9, 18, 0)));
  });

  it('gives a GPU quota the CPU and memory its jobs need with those GPUs', () => {
    // 8 GPUs, both quotas take all of them; a's jobs need 1 CPU and 4 GiB per GPU, b's 2 CPUs and 8 GiB.
    const shares = fairShares(res(64, 256, 8), [
      demand('a', { quota: gpus(4), demand: res(8, 32, 8) }),
      demand('b', { quota: gpus(4), demand: res(16, 64, 8) }),
    ]);
    expect(shares.get('a')).toEqual(res(4, 16, 4));
    expect(shares.get('b')).toEqual(res(8, 32, 4));
    // CPU-only jobs are not covered by a GPU quota: they only borrow.
    const cpuOnly = fairShares(res(64, 256, 8), [demand('a', { quota: gpus(4), demand: res(8, 8, 0) })]);
    expect(cpuOnly.get('a')).toEqual(res(8, 8, 0));
  });

  it('scales quotas down together when they oversubscribe the cluster', () => {
    const shares = fairShares(gpus(4), [
      demand('a', { quota: gpus(4), demand: gpus(9) }),
      demand('b', { quota: gpus(4), demand: gpus(9) }),
    ]);
    expect(shares.get('a')).toEqual(gpus(2));
    expect(shares.get('b')).toEqual(gpus(2));
  });

  it('divides a parent queue’s share among its children, quotas first', () => {
    const queues = [
      demand('dept-a', { quota: gpus(6) }),
      demand('a1', { parent: 'dept-a', quota: gpus(4), demand: gpus(20) }),
      demand('a2', { parent: 'dept-a', quota: gpus(2), demand: gpus(20) }),
      demand('dept-b', { quota: gpus(4), demand: gpus(20) }),
    ];
    let shares = fairShares(gpus(10), queues);
    expect([shares.get('dept-a'), shares.get('a1'), shares.get('a2'), shares.get('dept-b')]).toEqual([gpus(6), gpus(4), gpus(2), gpus(4)]);

    // dept-b idle: dept-a borrows everything; its teams get their quotas, then split the rest equally.
    shares = fairShares(gpus(10), queues.map((q) => (q.name === 'dept-b' ? { ...q, demand: ZERO } : q)));
    expect([shares.get('dept-a'), shares.get('a1'), shares.get('a2'), shares.get('dept-b')]).toEqual([gpus(10), gpus(6), gpus(4), ZERO]);
  });

  it('caps a parent’s children together at the parent’s limit', () => {
    const shares = fairShares(gpus(10), [
      demand('dept', { limit: { gpuMilli: 4000 } }),
      demand('t1', { parent: 'dept', demand: gpus(10) }),
      demand('t2', { parent: 'dept', demand: gpus(10) }),
      demand('other', { demand: gpus(10) }),
    ]);
    expect(shares.get('dept')).toEqual(gpus(4));
    expect(shares.get('t1')).toEqual(gpus(2));
    expect(shares.get('t2')).toEqual(gpus(2));
    expect(shares.get('other')).toEqual(gpus(6));
  });

  it('gives no GPU share on a cluster without GPUs', () => {
    const shares = fairShares(res(8, 16, 0), [demand('gpu', { demand: res(1, 1, 4) }), demand('cpu', { demand: res(2, 2, 0) })]);
    expect(shares.get('gpu')).toEqual(ZERO);
    expect(shares.get('cpu')).toEqual(res(2, 2, 0));
  });
});

function state(name: string, fields: Partial<QueueState> = {}): QueueState {
  return { name, quota: ZERO, weight: 1, allocated: ZERO, fairShare: ZERO, ...fields };
}

describe('queueOrder', () => {
  const capacity = gpus(16);

  it('offers queues below quota first, least of their quota used first', () => {
    const order = queueOrder(capacity, [
      state('borrower', { allocated: gpus(1), fairShare: gpus(8) }),
      state('most-used', { quota: gpus(4), allocated: gpus(3), fairShare: gpus(4) }),
      state('least-used', { quota: gpus(4), allocated: gpus(1), fairShare: gpus(4) }),
    ]);
    expect(order).toEqual(['least-used', 'most-used', 'borrower']);
  });

  it('then queues below their fair share by dominant share ÷ weight, then the rest', () => {
    const order = queueOrder(capacity, [
      state('at-share', { allocated: gpus(2), fairShare: gpus(2) }),
      state('light-heavy', { weight: 4, allocated: gpus(6), fairShare: gpus(10) }),
      state('light', { weight: 1, allocated: gpus(3), fairShare: gpus(4) }),
    ]);
    // 6/16 ÷ 4 < 3/16 ÷ 1; at-share has what it deserves and comes last.
    expect(order).toEqual(['light-heavy', 'light', 'at-share']);
  });

  it('skips a queue with no CPU or memory left under its limit, but not one at its GPU limit', () => {
    const order = queueOrder(res(16, 64, 16), [
      state('cpu-capped', { limit: { cpu: 2000 }, allocated: res(2, 1, 0) }),
      state('gpu-capped', { limit: { gpuMilli: 1000 }, allocated: res(1, 1, 1) }),
    ]);
    expect(order).toEqual(['gpu-capped']);
  });

  it('lists a parent’s children together, where the parent ranks', () => {
    const order = queueOrder(capacity, [
      state('dept', { quota: gpus(8), fairShare: gpus(8) }),
      state('t1', { parent: 'dept', quota: gpus(4), allocated: gpus(3), fairShare: gpus(4) }),
      state('t2', { parent: 'dept', quota: gpus(4), allocated: gpus(1), fairShare: gpus(4) }),
      state('solo', { quota: gpus(8), allocated: gpus(6), fairShare: gpus(8) }),
    ]);
    // dept uses 4/8 of its quota, solo 6/8: dept's teams first, the emptier team first; dept's own jobs last in it.
    expect(order).toEqual(['t2', 't1', 'dept', 'solo']);
  });
});

function job(id: string, queue: string | undefined, fields: Partial<QueuedJob> = {}): QueuedJob {
  return { id, ...(queue ? { queue } : {}), priority: 0, createdAt: 0, resources: gpus(1), ...fields };
}

describe('FairShareOrder', () => {
  it('interleaves two flooded queues in one pass although one submitted all its jobs first', () => {
    const jobs = [
      ...Array.from({ length: 20 }, (_, i) => job(`a${String(i).padStart(2, '0')}`, 'a', { createdAt: i })),
      ...Array.from({ length: 20 }, (_, i) => job(`b${String(i).padStart(2, '0')}`, 'b', { createdAt: 100 + i })),
    ];
    const order = new FairShareOrder(gpus(8), [state('a', { fairShare: gpus(4) }), state('b', { fairShare: gpus(4) })], jobs);
    const taken: string[] = [];
    for (let i = 0; i < 8; i++) {
      const next = order.next() as QueuedJob;
      taken.push(next.id);
      order.placed(next);
    }
    expect(taken.filter((id) => id.startsWith('a'))).toHaveLength(4);
    expect(order.allocations().get('a')).toEqual(gpus(4));
    expect(order.allocations().get('b')).toEqual(gpus(4));
  });

  it('offers a queue’s jobs by priority, then submission order', () => {
    const order = new FairShareOrder(gpus(8), [state('q')], [
      job('old-low', 'q', { createdAt: 1 }),
      job('new-high', 'q', { createdAt: 3, priority: 5 }),
      job('mid-low', 'q', { createdAt: 2 }),
    ]);
    expect([order.next(), order.next(), order.next(), order.next()].map((j) => j?.id)).toEqual(['new-high', 'old-low', 'mid-low', undefined]);
  });

  it('holds back jobs that would take their queue or its parent over a limit', () => {
    const order = new FairShareOrder(gpus(16), [
      state('dept', { limit: { gpuMilli: 3000 } }),
      state('team', { parent: 'dept', allocated: gpus(2) }),
      state('capped', { limit: { gpuMilli: 1000 } }),
    ], [job('t1', 'team'), job('t2', 'team'), job('c1', 'capped'), job('c2', 'capped')]);
    const offered: string[] = [];
    for (let next = order.next(); next; next = order.next()) {
      offered.push(next.id);
      order.placed(next);
    }
    expect(offered.sort()).toEqual(['c1', 't1']);
    expect(order.overLimit.map((j) => j.id).sort()).toEqual(['c2', 't2']);
    expect(fitsQueueLimit(gpus(1), gpus(1), { gpuMilli: 1000 })).toBe(false);
  });

  it('puts jobs without a queue in the default queue and jobs of an unknown queue last', () => {
    const order = new FairShareOrder(gpus(8), [state('default', { fairShare: gpus(8) })], [job('orphan', 'gone'), job('plain', undefined)]);
    expect([order.next()?.id, order.next()?.id]).toEqual(['plain', 'orphan']);
  });
});

// ---- scenario: the in-memory cluster over time -------------------------------------------

/** Deterministic pseudo-random numbers (LCG), so the scenario is the same on every run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface SimJob extends QueuedJob {
  kind: 'docker';
  queue: string;
  duration: number;
}

interface Running {
  job: SimJob;
  node: NodeView;
  gpuDevices: string[];
  endsAt: number;
}

interface ScenarioOptions {
  queues: { name: string; quota: Resources; weight: number; floodsFrom: number }[];
  ticks: number;
  seed?: number;
}

/**
 * 4 nodes of 8 GPUs; every queue is kept flooded (at least 50 pending
 * identical 1-GPU jobs) from its start tick; jobs run 3-12 ticks. Each tick:
 * finished jobs release their resources, fair shares are computed from
 * allocation + pending demand, and one scheduling pass places jobs in the
 * order FairShareOrder offers them. Returns the GPUs each queue held after
 * every tick.
 */
function runScenario(options: ScenarioOptions): Map<string, number[]> {
  const rand = random(options.seed ?? 42);
  const gpuList = (node: number): GpuDevice[] =>
    Array.from({ length: 8 }, (_, index) => ({ index, uuid: `n${node}-gpu${index}`, model: 'A100', memory: 80 * GI }));
  const nodes = Array.from({ length: 4 }, (_, i) =>
    newNodeView({ id: `node-${i}`, capacity: res(64, 512, 8), gpus: gpuList(i), labels: {}, executors: ['docker'] }),
  );
  const capacity = nodes.reduce((sum, n) => ({ cpu: sum.cpu + n.capacity.cpu, memory: sum.memory + n.capacity.memory, gpuMilli: sum.gpuMilli + n.capacity.gpuMilli }), ZERO);
  const policy = createPolicy('binpack');
  const pending = new Map<string, SimJob[]>(options.queues.map((q) => [q.name, []]));
  const running: Running[] = [];
  const held = new Map<string, number[]>(options.queues.map((q) => [q.name, []]));
  let seq = 0;

  for (let tick = 0; tick < options.ticks; tick++) {
    for (let i = running.length - 1; i >= 0; i--) {
      if (running[i].endsAt > tick) continue;
      release(running[i].node, running[i].job.resources, running[i].gpuDevices);
      running.splice(i, 1);
    }
    for (const q of options.queues) {
      const list = pending.get(q.name) as SimJob[];
      while (tick >= q.floodsFrom && list.length < 50) {
        const id = `j${String(seq++).padStart(6, '0')}`;
        list.push({ id, kind: 'docker', queue: q.name, priority: 0, createdAt: seq, resources: res(2, 16, 1), duration: 3 + Math.floor(rand() * 10) });
      }
    }
    const allocated = new Map<string, Resources>(options.queues.map((q) => [q.name, { ...ZERO }]));
    for (const r of running) {
      const a = allocated.get(r.job.queue) as Resources;
      allocated.set(r.job.queue, { cpu: a.cpu + r.job.resources.cpu, memory: a.memory + r.job.resources.memory, gpuMilli: a.gpuMilli + r.job.resources.gpuMilli });
    }
    const demands = options.queues.map((q) => {
      const want = (pending.get(q.name) as SimJob[]).reduce(
        (sum, j) => ({ cpu: sum.cpu + j.resources.cpu, memory: sum.memory + j.resources.memory, gpuMilli: sum.gpuMilli + j.resources.gpuMilli }),
        allocated.get(q.name) as Resources,
      );
      return { name: q.name, quota: q.quota, weight: q.weight, demand: want };
    });
    const shares = fairShares(capacity, demands);
    const order = new FairShareOrder(
      capacity,
      options.queues.map((q) => ({ ...q, allocated: allocated.get(q.name) as Resources, fairShare: shares.get(q.name) ?? ZERO })),
      [...pending.values()].flat(),
    );
    const placer = new PassPlacer(nodes, policy);
    const placed = new Set<string>();
    for (let next = order.next(); next; next = order.next()) {
      const choice = placer.place(next);
      if (!isPlaced(choice)) continue;
      const node = nodes.find((n) => n.id === choice.nodeId) as NodeView;
      allocate(node, next.resources, choice.gpuDevices);
      order.placed(next);
      placed.add(next.id);
      running.push({ job: next, node, gpuDevices: choice.gpuDevices, endsAt: tick + next.duration });
    }
    for (const [name, list] of pending) pending.set(name, list.filter((j) => !placed.has(j.id)));
    for (const q of options.queues) {
      const gpusHeld = running.filter((r) => r.job.queue === q.name).reduce((s, r) => s + r.job.resources.gpuMilli, 0) / 1000;
      (held.get(q.name) as number[]).push(gpusHeld);
    }
  }
  return held;
}

const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

describe('scenario: sharing a 32-GPU cluster over time', () => {
  it('two queues with equal quota, both flooded: over time each gets 50% ± 5% of GPUs', () => {
    const held = runScenario({
      ticks: 400,
      queues: [
        { name: 'team-a', quota: gpus(8), weight: 1, floodsFrom: 0 },
        { name: 'team-b', quota: gpus(8), weight: 1, floodsFrom: 0 },
      ],
    });
    const a = held.get('team-a') as number[];
    const b = held.get('team-b') as number[];
    expect(Math.abs(mean(a) / 32 - 0.5)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(mean(b) / 32 - 0.5)).toBeLessThanOrEqual(0.05);
    // Nothing idles while both are flooded.
    expect(a.every((x, i) => x + b[i] === 32)).toBe(true);
  });

  it('a queue flooding a busy cluster later still gets 50% ± 5% over time; alone, the first had it all', () => {
    const held = runScenario({
      ticks: 450,
      queues: [
        { name: 'early', quota: gpus(8), weight: 1, floodsFrom: 0 },
        { name: 'late', quota: gpus(8), weight: 1, floodsFrom: 50 },
      ],
    });
    const early = held.get('early') as number[];
    const late = held.get('late') as number[];
    expect(early.slice(0, 50).every((x) => x === 32)).toBe(true); // idle capacity is lent while nobody else wants it
    expect(Math.abs(mean(late.slice(50)) / 32 - 0.5)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(mean(early.slice(50)) / 32 - 0.5)).toBeLessThanOrEqual(0.05);
    // Without preemption it takes the longest job (12 ticks) to converge; then the split holds.
    expect(late.slice(70).every((x) => Math.abs(x - 16) <= 2)).toBe(true);
  });

  it('weights 1:3 without quotas split the GPUs 25% / 75% ± 5%', () => {
    const held = runScenario({
      ticks: 400,
      queues: [
        { name: 'light', quota: ZERO, weight: 1, floodsFrom: 0 },
        { name: 'heavy', quota: ZERO, weight: 3, floodsFrom: 0 },
      ],
    });
    expect(Math.abs(mean(held.get('light') as number[]) / 32 - 0.25)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(mean(held.get('heavy') as number[]) / 32 - 0.75)).toBeLessThanOrEqual(0.05);
  });
});
