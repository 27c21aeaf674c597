import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { JOB_ID_PATTERN, type GangSpec, type Job } from '../../pkg/model/index.js';
import type { Store } from '../../pkg/store/store.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { makeJob, openStore, putJob, randomPrefix, snapshot } from './fixtures.js';
import { runCli } from './run-cli.js';

let etcd: EtcdServer;
let store: Store;
let prefix: string;
let tmp: string;
const cli = (...args: string[]) => runCli(args, { endpoints: etcd.endpoints, prefix, cwd: tmp });

beforeAll(async () => {
  etcd = await startEtcd({ name: 'cli-gang' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-gang-'));
  fs.writeFileSync(path.join(tmp, 'gang.yaml'), 'name: train\nimage: trainer\ngpu: 2\nreplicas: 3\nminAvailable: 2\ntopology: rack\n');
});

afterAll(async () => {
  store?.close();
  await etcd?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  store?.close();
  prefix = randomPrefix();
  store = openStore(etcd.endpoints, prefix);
});

/** Every stored job with the revision that created it. */
async function storedJobs(): Promise<{ job: Job; createRevision: string }[]> {
  const { items } = await store.listJobs();
  return items.map((i) => ({ job: i.value, createRevision: i.createRevision }));
}

describe('titan submit --replicas', () => {
  it('creates the N replicas in one transaction, ranks 0..N-1, and prints their ids (rank 0 = the gang id)', async () => {
    const res = await cli('submit', '--image', 'trainer', '--gpu', '2', '--name', 'train', '--replicas', '4');
    expect(res.code, res.stderr).toBe(0);
    const ids = res.stdout.trimEnd().split('\n');
    expect(ids).toHaveLength(4);
    for (const id of ids) expect(id).toMatch(JOB_ID_PATTERN);
    expect(res.stderr).toBe(`gang ${ids[0]}: 4 replicas, all 4 start together\n`);

    const stored = await storedJobs();
    expect(stored.map((s) => s.job.id)).toEqual(ids);
    // One transaction: every key was created at the same revision.
    expect(new Set(stored.map((s) => s.createRevision)).size).toBe(1);
    stored.forEach(({ job }, rank) => {
      expect(job).toMatchObject({
        name: `train-${rank}`,
        state: 'Pending',
        resources: { gpuMilli: 2000 },
        gang: { id: ids[0], rank, size: 4, minAvailable: 4 } satisfies GangSpec,
      });
    });
  });

  it('--output json: the gang and its jobs; a spec file may describe the gang', async () => {
    const res = await cli('submit', '-f', 'gang.yaml', '-o', 'json');
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { gang: { id: string; replicas: number; minAvailable: number; topology: string }; jobs: Job[] };
    expect(out.gang).toEqual({ id: out.jobs[0].id, replicas: 3, minAvailable: 2, topology: 'rack' });
    expect(out.jobs.map((j) => j.gang?.rank)).toEqual([0, 1, 2]);
    expect((await storedJobs()).map((s) => s.job)).toEqual(out.jobs);
  });

  it('status shows the gang line and every replica, for the gang id and for any replica', async () => {
    const res = await cli('submit', '--shell', 'sleep 1', '--replicas', '3', '--min-available', '2');
    const ids = res.stdout.trimEnd().split('\n');
    // Unrelated jobs around the gang must not show up among its replicas.
    await putJob(store, makeJob());
    const stored = (await store.requireJob(ids[1])).value;
    await putJob(store, { ...stored, state: 'Running', node: 'n7', attempt: 1 });

    const human = await cli('status', ids[0]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^Gang:\\s+${ids[0]} rank 0 of 3 \\(min 2\\)$`, 'm'));
    const table = human.stdout.slice(human.stdout.indexOf('Gang replicas:\n'));
    const rows = table.trimEnd().split('\n').slice(2).map((r) => r.trim().split(/\s+/));
    expect(rows).toEqual([
      ['0', ids[0], 'Pending', '-', '0'],
      ['1', ids[1], 'Running', 'n7', '1'],
      ['2', ids[2], 'Pending', '-', '0'],
    ]);

    const json = JSON.parse((await cli('status', ids[2], '-o', 'json')).stdout) as { gang: GangSpec; replicas: unknown[] };
    expect(json.gang).toEqual({ id: ids[0], rank: 2, size: 3, minAvailable: 2 });
    expect(json.replicas).toEqual([
      { rank: 0, id: ids[0], state: 'Pending', node: null, attempt: 0 },
      { rank: 1, id: ids[1], state: 'Running', node: 'n7', attempt: 1 },
      { rank: 2, id: ids[2], state: 'Pending', node: null, attempt: 0 },
    ]);
  });

  it('a gang in a queue that does not exist writes nothing', async () => {
    const before = await snapshot(store);
    const res = await cli('submit', '--shell', 'true', '--replicas', '2', '--queue', 'nope');
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^error: queue: no queue "nope"/);
    expect(await snapshot(store)).toEqual(before);
  });
});

describe('bad gang input exits 2, names the field and writes nothing', () => {
  const cases: [string, string[], RegExp][] = [
    ['--min-available above --replicas', ['--replicas', '4', '--min-available', '5'], /^error: minAvailable: --min-available 5 is more than --replicas 4$/],
    ['--topology without --replicas', ['--topology', 'rack'], /^error: topology: --topology needs --replicas$/],
    ['--min-available without --replicas', ['--min-available', '2'], /^error: minAvailable: --min-available needs --replicas$/],
    ['--replicas with -n', ['--replicas', '2', '-n', '3'], /^error: replicas: --replicas submits one gang; it cannot be combined with -n\/--count$/],
    ['--replicas with --wait', ['--replicas', '2', '--wait'], /^error: wait: /],
    ['--replicas 0', ['--replicas', '0'], /^error: replicas: must be more than zero$/],
    ['--replicas above the limit', ['--replicas', '64'], /^error: replicas: at most 63 replicas per gang/],
    ['a bad topology key', ['--replicas', '2', '--topology', 'rack=r1'], /^error: topology: "rack=r1" is not a node label key/],
  ];

  it.each(cases)('%s', async (_name, args, message) => {
    await store.createJobs([makeJob()]); // something to keep unchanged
    const before = await snapshot(store);
    const res = await cli('submit', '--shell', 'true', ...args);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr.trimEnd()).toMatch(message);
    expect(await snapshot(store)).toEqual(before);
  });
});
