import { describe, expect, it } from 'vitest';
import {
  allocate,
  chooseNode,
  createPolicy,
  isGangPlaced,
  newNodeView,
  pendingReason,
  pendingReasonKind,
  placeGang,
  type JobRequest,
  type NodeView,
  type NoPlacement,
} from '../../internal/scheduler/index.js';
import { attemptEndLabel } from '../../internal/worker/metrics.js';
import { resolveWorkerConfig } from '../../internal/worker/config.js';
import { attemptOutcome, buildJobSpec, dependencyReason, isTitanError, NO_CAUSES, parseAfter, type Job } from '../../pkg/model/index.js';

const GiB = 2 ** 30;
const binpack = createPolicy('binpack');

function node(id: string, cores: number): NodeView {
  return newNodeView({ id, capacity: { cpu: cores * 1000, memory: 8 * GiB, gpuMilli: 0 }, gpus: [], labels: {}, executors: ['docker'] });
}

const job = (cores: number, id = 'j'): JobRequest => ({ id, kind: 'docker', resources: { cpu: cores * 1000, memory: GiB, gpuMilli: 0 } });

/** The reason the scheduler gives a job that does not fit these nodes. */
function reasonFor(request: JobRequest, nodes: NodeView[]): string {
  return pendingReason(request, chooseNode(request, nodes, binpack) as NoPlacement, nodes);
}

describe('pendingReasonKind', () => {
  it('sorts the reasons the scheduler writes into their kinds', () => {
    expect(pendingReasonKind(reasonFor(job(1), []))).toBe('no-node');
    expect(pendingReasonKind(reasonFor(job(8), [node('a', 4)]))).toBe('never-fits');
    const full = node('a', 4);
    allocate(full, { cpu: 4000, memory: 0, gpuMilli: 0 }, []);
    expect(pendingReasonKind(reasonFor(job(1), [full]))).toBe('capacity');
    expect(pendingReasonKind('waiting for queue team: its limit is reached')).toBe('queue-limit');
    const gang = placeGang([job(4, 'r0'), job(4, 'r1')], [node('a', 4)], binpack, { minAvailable: 2 });
    expect(!isGangPlaced(gang) && pendingReasonKind(gang.reason)).toBe('gang');
    expect(pendingReasonKind('Gang restart: replica 1 failed')).toBe('gang');
    expect(pendingReasonKind(dependencyReason(parseAfter('ok:a1,b2')))).toBe('dependency');
  });

  it('tells a job not yet looked at, one in backoff and one requeued with its last reason', () => {
    expect(pendingReasonKind(undefined)).toBe('none');
    expect(pendingReasonKind('exited with code 1; retry 1 of 3 in 2.0s', 2_000, 1_000)).toBe('backoff');
    expect(pendingReasonKind('exited with code 1; retry 1 of 3 in 2.0s', 2_000, 3_000)).toBe('requeued');
    expect(pendingReasonKind('Reclaimed by queue b')).toBe('requeued');
  });
});

describe('attemptEndLabel', () => {
  const running: Job = { ...buildJobSpec({ image: 'busybox' }), id: 'j', state: 'Running', createdAt: 0, attempt: 1, timeoutMs: 1000 };
  const label = (end: Parameters<typeof attemptOutcome>[2], causes = NO_CAUSES): string => attemptEndLabel(attemptOutcome(running, causes, end, 0));

  it('names the outcome the master will read from the report', () => {
    expect(label({ type: 'exited', exitCode: 0 })).toBe('succeeded');
    expect(label({ type: 'exited', exitCode: 3 })).toBe('exit');
    expect(label({ type: 'exited', exitCode: 137 }, { ...NO_CAUSES, cancel: true })).toBe('cancelled');
    expect(label({ type: 'exited', exitCode: 143 }, { ...NO_CAUSES, evicted: 'Reclaimed by queue b' })).toBe('evicted');
    expect(label({ type: 'exited', exitCode: 143 }, { ...NO_CAUSES, timeout: true })).toBe('timeout');
    expect(label({ type: 'start-failed', reason: 'no such image' })).toBe('start-failed');
  });
});

describe('--metrics-listen', () => {
  it('is off by default, and comes from the flag or TITAN_WORKER_METRICS_LISTEN', async () => {
    expect((await resolveWorkerConfig({ gpus: 'none' }, {})).metricsListen).toBeUndefined();
    expect((await resolveWorkerConfig({ gpus: 'none' }, { TITAN_WORKER_METRICS_LISTEN: '127.0.0.1:9100' })).metricsListen).toEqual({ host: '127.0.0.1', port: 9100 });
    expect((await resolveWorkerConfig({ gpus: 'none', metricsListen: '127.0.0.1:9200' }, { TITAN_WORKER_METRICS_LISTEN: '127.0.0.1:9100' })).metricsListen?.port).toBe(9200);
    // A bare port is loopback, as for titan-master --listen.
    expect((await resolveWorkerConfig({ gpus: 'none', metricsListen: '9100' }, {})).metricsListen).toEqual({ host: '127.0.0.1', port: 9100 });
    const err = await resolveWorkerConfig({ gpus: 'none' }, { TITAN_WORKER_METRICS_LISTEN: 'http://127.0.0.1:9100' }).catch((e: unknown) => e);
    expect(isTitanError(err, 'InvalidInput') && (err as Error).message).toMatch(/TITAN_WORKER_METRICS_LISTEN/);
  });
});
