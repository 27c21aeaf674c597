import { describe, expect, it } from 'vitest';
import { ClusterState } from '../../internal/master/cluster-state.js';
import { decodePendingJob, type PendingJob } from '../../internal/master/pending-job.js';
import { placementWrite, planMasterPass } from '../../internal/master/plan.js';
import { createPolicy } from '../../internal/scheduler/index.js';
import { buildJobSpec, gangSpecs, type Assignment, type Job, type NodeInfo } from '../../pkg/model/index.js';
import { encode, type Versioned, type WatchEvent } from '../../pkg/store/index.js';

/**
 * Pure tests of the master's snapshot for gang wiring: the port each replica
 * holds, its peers and LOCAL_RANK, written in the assignment and rebuilt
 * from assignments alone.
 */

const key = (id: string): string => `/t/jobs/${id}`;

function gang(id: string, replicas: number, minAvailable = replicas): Job[] {
  const spec = buildJobSpec({ shell: 'true', cpu: '1', memory: '64Mi' });
  return gangSpecs(spec, `${id}-0`, { replicas, minAvailable }).map((s, rank) => ({ ...s, id: `${id}-${rank}`, state: 'Pending', createdAt: 1000 + rank, attempt: 0 }));
}

function listed(j: Job, modRevision: number): Versioned<PendingJob | null> {
  return { key: key(j.id), value: decodePendingJob(encode(j)), modRevision: String(modRevision), createRevision: String(modRevision) };
}

function node(id: string, cores: number, extra: Partial<NodeInfo> = {}): Versioned<NodeInfo> {
  const value: NodeInfo = { id, hostname: `${id}.local`, capacity: { cpu: cores * 1000, memory: 64 * 2 ** 30, gpuMilli: 0 }, gpus: [], labels: {}, executors: ['shell'], registeredAt: 0, version: 't', ...extra };
  return { key: `/t/nodes/${id}`, value, modRevision: '1', createRevision: '1' };
}

function versioned(a: Omit<Assignment, 'job'>): Versioned<Assignment> {
  return { key: `/t/assign/${a.nodeId}/${a.jobId}`, value: a, modRevision: '9', createRevision: '9' };
}

/** Plans a pass, commits it as the committer would (the jobs leave the queue), and returns the assignments written, in rank order. */
function placeAll(state: ClusterState, now: number): Omit<Assignment, 'job'>[] {
  const plan = planMasterPass(state, createPolicy('binpack'), new Set(), now);
  for (const p of plan.placements) state.noteLocalJobWrite(p.job.id, p.job.modRevision, now);
  return plan.placements.map((p) => placementWrite(p, key(p.job.id)).assignment).sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0));
}

describe('gang wiring in the master', () => {
  it('a 3-replica gang over two nodes: ports from each node range, peers at the advertised address, LOCAL_RANK per node', () => {
    const state = new ClusterState();
    state.resetNodes([node('a', 2, { advertiseAddr: '10.0.0.1', portRange: { first: 40000, last: 40009 } }), node('b', 1)]);
    const jobs = gang('g', 3);
    state.resetJobs(jobs.map((j, i) => listed(j, i + 1)));
    const written = placeAll(state, 5000);
    expect(written.map((a) => [a.jobId, a.nodeId, a.port, a.rank, a.localRank])).toEqual([
      ['g-0', 'a', 40000, 0, 0],
      ['g-1', 'a', 40001, 1, 1],
      // b's record predates --port-range and --advertise-addr: the default range, and its hostname.
      ['g-2', 'b', 29500, 2, 0],
    ]);
    for (const a of written) {
      expect(a.peers).toEqual(['10.0.0.1:40000', '10.0.0.1:40001', 'b.local:29500']);
      expect(a.gang).toBe('g-0');
    }
  });

  it('a second gang on the same node gets other ports; they come free when the attempts end; a restarted master rebuilds them', () => {
    const state = new ClusterState();
    state.resetNodes([node('a', 8, { portRange: { first: 40000, last: 40009 } })]);
    const [first, second] = [gang('g', 2), gang('h', 2)];
    state.resetJobs(first.map((j, i) => listed(j, i + 1)));
    const one = placeAll(state, 5000);
    state.resetJobs(second.map((j, i) => listed(j, i + 10)));
    const two = placeAll(state, 6000);
    expect(one.map((a) => a.port)).toEqual([40000, 40001]);
    expect(two.map((a) => a.port)).toEqual([40002, 40003]);

    // A restarted master: nothing but the assignments tells it which ports are held.
    const restarted = new ClusterState();
    restarted.resetNodes([node('a', 8, { portRange: { first: 40000, last: 40009 } })]);
    restarted.resetAssignments([...one, ...two].map(versioned));
    const held = (s: ClusterState): number[] => [...(s.nodes.get('a')?.view.ports.held.keys() ?? [])].sort();
    expect(held(restarted)).toEqual([40000, 40001, 40002, 40003]);

    // g's attempts end: the worker deletes the assignments, and their ports are free for the next gang.
    const deletes: WatchEvent<Assignment>[] = one.map((a) => ({ type: 'delete', key: `/t/assign/a/${a.jobId}`, modRevision: '20', createRevision: '9' }));
    restarted.applyAssignmentEvents(deletes);
    expect(held(restarted)).toEqual([40002, 40003]);
    const third = gang('k', 3);
    restarted.resetJobs(third.map((j, i) => listed(j, i + 30)));
    expect(placeAll(restarted, 7000).map((a) => a.port)).toEqual([40000, 40001, 40004]);
  });

  it('a replica placed after its siblings (a gang started below N) sees the running ones in its peers', () => {
    const state = new ClusterState();
    state.resetNodes([node('a', 2, { advertiseAddr: '10.0.0.1', portRange: { first: 40000, last: 40009 } })]);
    const jobs = gang('g', 3, 2);
    state.resetJobs(jobs.map((j, i) => listed(j, i + 1)));
    const early = placeAll(state, 5000);
    expect(early.map((a) => a.rank)).toEqual([0, 1]);
    expect(early[0].peers).toEqual(['10.0.0.1:40000', '10.0.0.1:40001', '']);

    // A second node joins; the last replica goes there and knows where ranks 0 and 1 run.
    state.applyNodeEvents([{ type: 'put', key: '/t/nodes/b', value: node('b', 2, { advertiseAddr: '10.0.0.2' }).value, modRevision: '2', createRevision: '2' }]);
    const late = placeAll(state, 6000);
    expect(late.map((a) => [a.jobId, a.nodeId, a.port, a.localRank])).toEqual([['g-2', 'b', 29500, 0]]);
    expect(late[0].peers).toEqual(['10.0.0.1:40000', '10.0.0.1:40001', '10.0.0.2:29500']);
  });
});
