import { describe, expect, it } from 'vitest';
import { describeGang, jobStatusView, renderJobStatus, replicaView } from '../../internal/cli/jobs.js';
import { describeGangSubmission, planSubmission } from '../../internal/cli/submit.js';
import {
  buildJobSpec,
  gangPeers,
  joinHostPort,
  splitHostPort,
  gangProblem,
  gangSpecs,
  JOB_ID_PATTERN,
  MAX_GANG_SIZE,
  parseGangOptions,
  parseSpecFile,
  type Job,
} from '../../pkg/model/index.js';
import { MAX_PLACEMENTS_PER_TXN, MAX_TXN_OPS } from '../../pkg/store/txn.js';
import { refusal } from '../harness/refusal.js';


const invalid = refusal;

describe('parseGangOptions', () => {
  it('not a gang without --replicas', () => {
    expect(parseGangOptions({})).toBeUndefined();
  });

  it('minAvailable defaults to all replicas; topology is kept', () => {
    expect(parseGangOptions({ replicas: '4' })).toEqual({ replicas: 4, minAvailable: 4 });
    expect(parseGangOptions({ replicas: 4, minAvailable: '2', topology: 'rack' })).toEqual({ replicas: 4, minAvailable: 2, topology: 'rack' });
    expect(parseGangOptions({ replicas: 1 })).toEqual({ replicas: 1, minAvailable: 1 });
  });

  it.each([
    [{ replicas: '4', minAvailable: '5' }, 'minAvailable', 'minAvailable: --min-available 5 is more than --replicas 4'],
    [{ topology: 'rack' }, 'topology', 'topology: --topology needs --replicas'],
    [{ minAvailable: '2' }, 'minAvailable', 'minAvailable: --min-available needs --replicas'],
    [{ replicas: '0' }, 'replicas', 'replicas: must be more than zero'],
    [{ replicas: 'four' }, 'replicas', 'replicas: "four" is not a whole number'],
    [{ replicas: '4', minAvailable: '0' }, 'minAvailable', 'minAvailable: must be more than zero'],
    [{ replicas: String(MAX_GANG_SIZE + 1) }, 'replicas', `replicas: at most ${MAX_GANG_SIZE} replicas per gang`],
    [{ replicas: '2', topology: 'a rack' }, 'topology', 'topology: "a rack" is not a node label key'],
    [{ replicas: '2', topology: 'rack=r1' }, 'topology', 'topology: "rack=r1" is not a node label key'],
  ])('%j is bad input naming %s', (input, field, message) => {
    const err = invalid(() => parseGangOptions(input));
    expect(err.field).toBe(field);
    expect(err.message.startsWith(message)).toBe(true);
  });

  it('buildJobSpec validates the gang fields too, and a spec file may carry them', () => {
    invalid(() => buildJobSpec({ image: 'busybox', replicas: 2, minAvailable: 3 }));
    const input = parseSpecFile('image: busybox\nreplicas: 4\nminAvailable: 2\ntopology: rack\n', 'gang.yaml');
    expect(parseGangOptions(input)).toEqual({ replicas: 4, minAvailable: 2, topology: 'rack' });
    expect(() => parseSpecFile('image: busybox\ntopology: [rack]\n', 'g.yaml')).toThrow(/topology: must be a string/);
  });

  it('a gang fits one placement transaction and one create transaction', () => {
    expect(MAX_GANG_SIZE).toBeLessThanOrEqual(MAX_PLACEMENTS_PER_TXN);
    expect(MAX_GANG_SIZE + 1).toBeLessThanOrEqual(MAX_TXN_OPS / 2); // + the queue compare of createJobs
  });
});

describe('gangSpecs', () => {
  const spec = buildJobSpec({ image: 'trainer', name: 'train', gpu: 2, env: ['A=1'], nodeSelector: ['zone=a'] });

  it('one spec per rank, sharing the group, named <name>-<rank>, with nothing aliased', () => {
    const specs = gangSpecs(spec, 'gangid', { replicas: 3, minAvailable: 2, topology: 'rack' });
    expect(specs.map((s) => s.gang)).toEqual([0, 1, 2].map((rank) => ({ id: 'gangid', rank, size: 3, minAvailable: 2, topology: 'rack' })));
    expect(specs.map((s) => s.name)).toEqual(['train-0', 'train-1', 'train-2']);
    for (const s of specs) expect(s).toMatchObject({ image: 'trainer', resources: spec.resources, env: { A: '1' }, nodeSelector: { zone: 'a' } });
    specs[0].env.B = '2';
    expect(specs[1].env).toEqual({ A: '1' });
    expect(spec.env).toEqual({ A: '1' });
    for (const s of specs) expect(gangProblem(s.gang!)).toBeUndefined();
  });

  it('unnamed jobs stay unnamed; a name too long for its rank suffix is bad input', () => {
    expect(gangSpecs({ ...spec, name: '' }, 'g', { replicas: 2, minAvailable: 2 }).map((s) => s.name)).toEqual(['', '']);
    const err = invalid(() => gangSpecs({ ...spec, name: 'x'.repeat(62) }, 'g', { replicas: 10, minAvailable: 10 }));
    expect(err.field).toBe('name');
  });

  it('gangProblem spots malformed stored records', () => {
    const ok = { id: 'g', rank: 0, size: 2, minAvailable: 1 };
    expect(gangProblem(ok)).toBeUndefined();
    expect(gangProblem({ ...ok, rank: 2 })).toMatch(/rank/);
    expect(gangProblem({ ...ok, minAvailable: 3 })).toMatch(/minAvailable/);
    expect(gangProblem({ ...ok, size: 0 })).toMatch(/size/);
    expect(gangProblem({ ...ok, id: '' })).toMatch(/id/);
    expect(gangProblem({ ...ok, topology: 'a b' })).toMatch(/topology/);
  });
});

describe('gangPeers', () => {
  it('host:port per rank in rank order: the node address and the port the replica holds; the node id for an unknown node', () => {
    const addresses = new Map([['n1', '10.0.0.1'], ['n2', 'host-2.example']]);
    const members = [
      { rank: 2, nodeId: 'n2', port: 29500 },
      { rank: 0, nodeId: 'n1', port: 29500 },
      { rank: 1, nodeId: 'n1', port: 29501 },
      { rank: 3, nodeId: 'n9', port: 40000 },
    ];
    expect(gangPeers(4, members, addresses)).toEqual(['10.0.0.1:29500', '10.0.0.1:29501', 'host-2.example:29500', 'n9:40000']);
    expect(gangPeers(2, [{ rank: 1, nodeId: 'n1', port: 31000 }], { n1: 'h' })).toEqual(['', 'h:31000']);
  });

  it('an IPv6 address goes in brackets, and splitHostPort takes an entry apart again', () => {
    expect(gangPeers(1, [{ rank: 0, nodeId: 'n1', port: 29500 }], { n1: 'fd00::1' })).toEqual(['[fd00::1]:29500']);
    expect(joinHostPort('h', 1)).toBe('h:1');
    expect(splitHostPort('[fd00::1]:29500')).toEqual({ host: 'fd00::1', port: 29500 });
    expect(splitHostPort('127.0.0.1:29501')).toEqual({ host: '127.0.0.1', port: 29501 });
    for (const bad of ['', 'h', ':1', 'h:', 'h:0', 'h:70000', 'h:1x']) expect(splitHostPort(bad)).toBeUndefined();
  });
});

describe('titan submit --replicas (planSubmission)', () => {
  it('N pending replicas with increasing ids; the gang id is rank 0\'s job id', () => {
    const plan = planSubmission({ image: 'busybox', cmd: 'hostname', gpu: '2', replicas: '4', minAvailable: '3', topology: 'rack' }, { now: 7 });
    expect(plan).toMatchObject({ bulk: false, wait: false, gang: { replicas: 4, minAvailable: 3, topology: 'rack' } });
    expect(plan.jobs).toHaveLength(4);
    const ids = plan.jobs.map((j) => j.id);
    for (const id of ids) expect(id).toMatch(JOB_ID_PATTERN);
    expect([...ids].sort()).toEqual(ids);
    expect(plan.gang?.id).toBe(ids[0]);
    plan.jobs.forEach((job, rank) => {
      expect(job).toMatchObject({ state: 'Pending', attempt: 0, createdAt: 7, gang: { id: ids[0], rank, size: 4, minAvailable: 3, topology: 'rack' } });
    });
    expect(describeGangSubmission(plan)).toBe(`gang ${ids[0]}: 4 replicas, starts once 3 fit at once, preferring one rack`);
  });

  it.each([
    [{ image: 'b', replicas: '2', count: '3' }, /^replicas: --replicas submits one gang; it cannot be combined with -n\/--count/],
    [{ image: 'b', replicas: '2', wait: true }, /^wait: /],
    [{ image: 'b', replicas: '4', minAvailable: '5' }, /^minAvailable: --min-available 5 is more than --replicas 4$/],
    [{ image: 'b', topology: 'rack' }, /^topology: --topology needs --replicas$/],
    [{ replicas: '2' }, /^image: /],
  ])('%j is bad input', (flags, message) => {
    expect(() => planSubmission(flags)).toThrow(message);
  });
});

describe('titan status of a gang replica', () => {
  const replica = (rank: number, extra: Partial<Job> = {}): Job => ({
    ...buildJobSpec({ image: 'trainer' }),
    id: `0000000000${rank}aa`,
    state: 'Running',
    createdAt: 1,
    attempt: 1,
    node: `n${rank}`,
    gang: { id: '00000000000aa', rank, size: 2, minAvailable: 2, topology: 'rack' },
    ...extra,
  });

  it('shows the group line and, given the siblings, every replica', () => {
    const replicas = [replica(0), replica(1, { state: 'Pending', node: undefined })];
    const text = renderJobStatus(replicas[1], 10, replicas.map(replicaView));
    expect(text).toMatch(/^Gang:\s+00000000000aa rank 1 of 2 \(min 2, topology rack\)$/m);
    expect(text).toContain('Gang replicas:\n  RANK   ID              STATE     NODE   ATTEMPT\n  0      00000000000aa   Running   n0     1\n  1      00000000001aa   Pending   -      1\n');
    expect(jobStatusView(replicas[0], replicas).replicas).toEqual([
      { rank: 0, id: '00000000000aa', state: 'Running', node: 'n0', attempt: 1 },
      { rank: 1, id: '00000000001aa', state: 'Pending', node: null, attempt: 1 },
    ]);
    expect(describeGang({ id: 'g', rank: 0, size: 4, minAvailable: 4 })).toBe('g rank 0 of 4 (min 4)');
    expect(jobStatusView(replica(0))).not.toHaveProperty('replicas');
  });
});
