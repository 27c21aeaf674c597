import { describe, expect, it } from 'vitest';
import { formatLimit, renderQueueTable, summarizeQueues, type JobLoad } from '../../internal/cli/queues.js';
import { buildSubmitInput, planSubmission } from '../../internal/cli/submit.js';
import {
  buildJobSpec,
  buildQueue,
  implicitDefaultQueue,
  parseSpecFile,
  validateQueueTree,
  withDefaultQueue,
  type Assignment,
  type NodeInfo,
  type Queue,
  type Resources,
} from '../../pkg/model/index.js';
import { refusal } from '../harness/refusal.js';

const GI = 2 ** 30;


const invalid = refusal;

describe('buildQueue', () => {
  it('parses quota, limit, weight and parent flags', () => {
    const q = buildQueue('team-a', { quotaCpu: '8', quotaMem: '32Gi', quotaGpu: '4', limitGpu: '8', weight: '2', parent: 'dept-a' }, undefined, 5);
    expect(q).toEqual({
      name: 'team-a',
      parent: 'dept-a',
      quota: { cpu: 8000, memory: 32 * GI, gpuMilli: 4000 },
      limit: { gpuMilli: 8000 },
      weight: 2,
      createdAt: 5,
    });
  });

  it('defaults to no quota, no limit and weight 1; zero and fractional GPU amounts are fine', () => {
    expect(buildQueue('q', {}, undefined, 1)).toEqual({ name: 'q', quota: { cpu: 0, memory: 0, gpuMilli: 0 }, weight: 1, createdAt: 1 });
    expect(buildQueue('q', { quotaGpu: '1.5', limitCpu: '0' }).limit).toEqual({ cpu: 0 });
    expect(buildQueue('q', { quotaGpu: '1.5' }).quota.gpuMilli).toBe(1500);
  });

  it.each([
    ['bad name', 'a/b', {}, 'name'],
    ['bad cpu', 'q', { quotaCpu: 'lots' }, 'quotaCpu'],
    ['negative memory', 'q', { quotaMem: '-1Gi' }, 'quotaMem'],
    ['bad gpu', 'q', { limitGpu: 'x' }, 'limitGpu'],
    ['limit below quota', 'q', { quotaGpu: '4', limitGpu: '2' }, 'limitGpu'],
    ['zero weight', 'q', { weight: '0' }, 'weight'],
    ['negative weight', 'q', { weight: '-1' }, 'weight'],
    ['own parent', 'q', { parent: 'q' }, 'parent'],
    ['default with a parent', 'default', { parent: 'x' }, 'parent'],
  ] as const)('rejects %s', (_what, name, input, field) => {
    expect(invalid(() => buildQueue(name, input)).field).toBe(field);
  });

  it('updates only the given fields; none removes a limit or the parent', () => {
    const base = buildQueue('t', { parent: 'd', quotaGpu: '2', limitGpu: '4', limitCpu: '16', weight: '3' }, undefined, 7);
    const next = buildQueue('t', { limitGpu: 'none', parent: 'none', quotaCpu: '1' }, base);
    expect(next).toEqual({ name: 't', quota: { cpu: 1000, memory: 0, gpuMilli: 2000 }, limit: { cpu: 16000 }, weight: 3, createdAt: 7 });
  });
});

describe('validateQueueTree', () => {
  const q = (name: string, fields: Partial<Queue> = {}): Queue => ({ ...buildQueue(name, {}), ...fields });
  const gpu = (n: number): Resources => ({ cpu: 0, memory: 0, gpuMilli: n * 1000 });

  it('accepts two levels with children inside their parent’s quota', () => {
    expect(() =>
      validateQueueTree([q('dept', { quota: gpu(8) }), q('a', { parent: 'dept', quota: gpu(4) }), q('b', { parent: 'dept', quota: gpu(4) })]),
    ).not.toThrow();
  });

  it('rejects a missing parent, a third level, children of default and children over the parent’s quota', () => {
    expect(invalid(() => validateQueueTree([q('a', { parent: 'nope' })])).message).toMatch(/no queue "nope"/);
    expect(invalid(() => validateQueueTree([q('d'), q('t', { parent: 'd' }), q('x', { parent: 't' })])).message).toMatch(/two levels/);
    expect(invalid(() => validateQueueTree([q('a', { parent: 'default' })])).message).toMatch(/default queue cannot have child/);
    const over = invalid(() => validateQueueTree([q('dept', { quota: gpu(4) }), q('a', { parent: 'dept', quota: gpu(3) }), q('b', { parent: 'dept', quota: gpu(2) })]));
    expect(over.field).toBe('quotaGpu');
    expect(over.message).toMatch(/add up to 5 gpu, more than dept's own quota of 4 gpu/);
  });

  it('always has a default queue', () => {
    expect(withDefaultQueue([]).map((x) => x.name)).toEqual(['default']);
    const custom = { ...implicitDefaultQueue(), weight: 2 };
    expect(withDefaultQueue([custom])).toEqual([custom]);
  });
});

describe('submit --queue', () => {
  it('stores the queue a job names; the default queue stays implicit', () => {
    expect(planSubmission({ shell: 'true', queue: 'team-a' }).jobs[0].queue).toBe('team-a');
    expect(planSubmission({ shell: 'true', queue: 'default' }).jobs[0]).not.toHaveProperty('queue');
    expect(planSubmission({ shell: 'true' }).jobs[0]).not.toHaveProperty('queue');
    expect(buildSubmitInput({ queue: 'q' })).toEqual({ queue: 'q' });
  });

  it('takes the queue from a spec file and rejects a bad name', () => {
    expect(buildJobSpec(parseSpecFile('shell: "true"\nqueue: team-b\n', 'job.yaml')).queue).toBe('team-b');
    expect(invalid(() => buildJobSpec({ shell: 'true', queue: 'a b' })).field).toBe('queue');
    expect(invalid(() => parseSpecFile('shell: "true"\nqueue: 5\n', 'job.yaml')).field).toBe('queue');
  });
});

describe('summarizeQueues', () => {
  const node = (id: string, gpus: number): NodeInfo => ({
    id,
    hostname: id,
    capacity: { cpu: 16000, memory: 64 * GI, gpuMilli: gpus * 1000 },
    gpus: Array.from({ length: gpus }, (_, index) => ({ index, uuid: `${id}-${index}`, model: 'A100', memory: 0 })),
    labels: {},
    executors: ['docker'],
    registeredAt: 1,
    version: 'test',
  });
  const r = (gpus: number): Resources => ({ cpu: 1000, memory: GI, gpuMilli: gpus * 1000 });
  const assignment = (jobId: string, gpus: number): Assignment => ({ jobId, nodeId: 'n1', attempt: 1, resources: r(gpus), gpuDevices: [], assignedAt: 1 });

  it('shows allocation, pending jobs and fair share per queue, parents summing their children', () => {
    const queues = [
      buildQueue('dept', { quotaGpu: '4' }),
      buildQueue('team', { parent: 'dept', quotaGpu: '4' }),
      buildQueue('other', { limitGpu: '2' }),
    ];
    const jobs: JobLoad[] = [
      { id: 'j1', queue: 'team', state: 'Running', resources: r(2) },
      { id: 'j2', queue: 'team', state: 'Pending', resources: r(4) },
      { id: 'j3', queue: 'other', state: 'Pending', resources: r(4) },
      { id: 'j4', queue: 'default', state: 'Pending', resources: r(1) },
      { id: 'j5', queue: 'gone', state: 'Pending', resources: r(1) },
    ];
    const rows = summarizeQueues(queues, [node('n1', 8)], [assignment('j1', 2), assignment('ended', 1)], jobs);
    expect(rows.map((x) => x.name)).toEqual(['default', 'dept', 'team', 'gone', 'other']);
    const byName = new Map(rows.map((x) => [x.name, x]));
    expect(byName.get('team')).toMatchObject({ parent: 'dept', running: 1, pending: 1, allocated: r(2) });
    expect(byName.get('dept')).toMatchObject({ parent: null, running: 1, pending: 1, allocated: r(2) });
    expect(byName.get('default')).toMatchObject({ implicit: true, pending: 1 });
    expect(byName.get('gone')).toMatchObject({ missing: true, pending: 1 });
    // 8 GPUs: dept's quota of 4 first (all of it to team), then the 4 idle GPUs are lent
    // equally to the 3 stored queues that want more: default's 1 is all it asks for, dept and
    // other get 1.5 each. The deleted queue claims no share: the scheduling pass orders queues by
    // these very shares (queueFairShares), and gives its jobs only capacity nobody else can use.
    expect(byName.get('team')?.fairShare.gpuMilli).toBe(5500);
    expect(byName.get('dept')?.fairShare.gpuMilli).toBe(5500);
    expect(byName.get('other')?.fairShare.gpuMilli).toBe(1500);
    expect(byName.get('default')?.fairShare.gpuMilli).toBe(1000);
    expect(byName.get('gone')?.fairShare.gpuMilli).toBe(0);

    const table = renderQueueTable(rows).split('\n');
    expect(table[0]).toMatch(/^NAME\s+PARENT\s+QUOTA\s+LIMIT\s+WEIGHT\s+ALLOCATED\s+PENDING\s+FAIR SHARE$/);
    expect(table.find((l) => l.startsWith('team '))).toMatch(/^team\s+dept\s+0\/0\/4\s+-\s+1\s+1\/1Gi\/2\s+1\s+\d/);
    expect(table.find((l) => l.startsWith('gone'))).toMatch(/^gone \(deleted\)/);
    expect(formatLimit({ gpuMilli: 8000 })).toBe('-/-/8');
  });
});
