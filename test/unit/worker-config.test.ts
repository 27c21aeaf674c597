import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGpuFlag, resolveWorkerConfig } from '../../internal/worker/config.js';
import { isTitanError } from '../../pkg/model/index.js';

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** The default state dir with no XDG_STATE_HOME. */
function privateStateDir(nodeId: string): string {
  return process.getuid?.() === 0 ? `/var/lib/titan/worker-${nodeId}` : path.join(os.homedir(), '.local/state/titan', `worker-${nodeId}`);
}

describe('resolveWorkerConfig', () => {
  it('uses defaults from the host', async () => {
    const c = await resolveWorkerConfig({ gpus: 'none' }, {});
    expect(c.endpoints).toEqual(['127.0.0.1:2379']);
    expect(c.prefix).toBe('/titan');
    expect(c.nodeId).toBe(os.hostname());
    expect(c.cpu).toBe(os.cpus().length * 1000);
    expect(c.memory).toBe(os.totalmem());
    expect(c.ttlSeconds).toBe(10);
    expect(c.maxLogBytes).toBe(8 * 2 ** 20);
    expect(c.network).toBeUndefined();
    expect(c.docker).toBe('auto');
    expect(c.logFlushMs).toBe(100);
    expect(c.logChunkBytes).toBe(64 * 1024);
    expect(c.labels).toEqual({});
    expect(c.gpus).toEqual([]);
    expect(c.stopGraceMs).toBe(10_000);
    expect(c.stateDir).toBe(privateStateDir(os.hostname()));
    expect(c.nodeLostRetries).toBe(3);
    expect(c.advertiseAddr).toBe(os.hostname());
    expect(c.portRange).toEqual({ first: 29500, last: 29999 });
  });

  it('flags beat the environment', async () => {
    const env = { TITAN_WORKER_CPU: '2', TITAN_NODE_ID: 'from-env', TITAN_WORKER_LABELS: 'zone=a,disk=ssd' };
    const c = await resolveWorkerConfig({ cpu: '1500m', gpus: 'none' }, env);
    expect(c.cpu).toBe(1500);
    expect(c.nodeId).toBe('from-env');
    expect(c.labels).toEqual({ zone: 'a', disk: 'ssd' });
    const d = await resolveWorkerConfig({ label: ['zone=b'], gpus: 'none', nodeId: 'n1' }, env);
    expect(d.labels).toEqual({ zone: 'b' });
    expect(d.nodeId).toBe('n1');
  });

  it('parses every option', async () => {
    const c = await resolveWorkerConfig(
      {
        endpoints: '10.0.0.1:2379,10.0.0.2:2379',
        prefix: '/t1',
        memory: '16Gi',
        gpus: '0,2',
        ttl: '5',
        maxLog: '1Mi',
        network: 'none',
        docker: 'off',
        stopGrace: '2.5s',
        stateDir: 'rel/state',
        nodeLostRetries: '0',
        nodeId: 'n7',
      },
      {},
    );
    expect(c.stopGraceMs).toBe(2500);
    expect(c.stateDir).toBe(path.resolve('rel/state'));
    expect(c.nodeLostRetries).toBe(0);
    expect(c).toMatchObject({
      endpoints: ['10.0.0.1:2379', '10.0.0.2:2379'],
      prefix: '/t1',
      memory: 16 * 2 ** 30,
      ttlSeconds: 5,
      maxLogBytes: 2 ** 20,
      network: 'none',
      docker: 'off',
    });
    expect(c.gpus.map((g) => g.index)).toEqual([0, 2]);
    const e = await resolveWorkerConfig({}, { TITAN_WORKER_GPUS: '2', TITAN_WORKER_DOCKER: 'on', TITAN_WORKER_TTL: '30' });
    expect(e.gpus).toEqual([
      { index: 0, uuid: '', model: 'unknown', memory: 0 },
      { index: 1, uuid: '', model: 'unknown', memory: 0 },
    ]);
    expect(e.docker).toBe('on');
    expect(e.ttlSeconds).toBe(30);
    const f = await resolveWorkerConfig(
      { gpus: 'none', nodeId: 'n8' },
      { TITAN_WORKER_STOP_GRACE: '1m', TITAN_WORKER_STATE_DIR: '/var/lib/titan', TITAN_NODE_LOST_RETRIES: '5' },
    );
    expect(f).toMatchObject({ stopGraceMs: 60_000, stateDir: '/var/lib/titan', nodeLostRetries: 5, parallelStarts: 8 });
    expect((await resolveWorkerConfig({ gpus: 'none', nodeId: 'n8', parallelStarts: '3' }, {})).parallelStarts).toBe(3);
    expect((await resolveWorkerConfig({ gpus: 'none', nodeId: 'n8' }, { TITAN_WORKER_PARALLEL_STARTS: '16' })).parallelStarts).toBe(16);
    // The default state dir follows the node id, so two workers on one host keep apart.
    expect((await resolveWorkerConfig({ gpus: 'none', nodeId: 'n9' }, {})).stateDir).toBe(privateStateDir('n9'));
    // Never under the shared temporary directory: root's is under /var/lib/titan, a user's under $XDG_STATE_HOME.
    expect((await resolveWorkerConfig({ gpus: 'none', nodeId: 'n9' }, { XDG_STATE_HOME: '/srv/state' })).stateDir).toBe(
      process.getuid?.() === 0 ? '/var/lib/titan/worker-n9' : '/srv/state/titan/worker-n9',
    );
  });

  it('rejects bad values naming the flag or variable', async () => {
    const cases: [Parameters<typeof resolveWorkerConfig>[0], Record<string, string>, string][] = [
      [{ cpu: 'lots' }, {}, '--cpu'],
      [{ memory: '12 parsecs' }, {}, '--memory'],
      [{ ttl: '0' }, {}, '--ttl'],
      [{ ttl: '1' }, {}, '--ttl'],
      [{ ttl: 'x' }, {}, '--ttl'],
      [{ maxLog: 'big' }, {}, '--max-log'],
      [{ docker: 'maybe' }, {}, '--docker'],
      [{ gpus: 'a,b' }, {}, '--gpus'],
      [{ gpus: '1,1' }, {}, '--gpus'],
      [{ label: ['novalue'] }, {}, '--label'],
      [{ nodeId: 'a/b' }, {}, '--node-id'],
      [{ endpoints: 'nope' }, {}, '--endpoints'],
      [{ network: 'bad net' }, {}, '--network'],
      [{ stopGrace: 'soon' }, {}, '--stop-grace'],
      [{ stateDir: ' ' }, {}, '--state-dir'],
      [{ nodeLostRetries: '-1' }, {}, '--node-lost-retries'],
      [{ parallelStarts: '0' }, {}, '--parallel-starts'],
      [{ parallelStarts: 'many' }, {}, '--parallel-starts'],
      [{}, { TITAN_WORKER_PARALLEL_STARTS: '-2' }, 'TITAN_WORKER_PARALLEL_STARTS'],
      [{}, { TITAN_WORKER_MEMORY: 'x' }, 'TITAN_WORKER_MEMORY'],
      [{}, { TITAN_WORKER_LABELS: 'a' }, 'TITAN_WORKER_LABELS'],
      [{ portRange: '29999-29500' }, {}, '--port-range'],
      [{ portRange: '0-10' }, {}, '--port-range'],
      [{ portRange: '60000-70000' }, {}, '--port-range'],
      [{ portRange: '29500' }, {}, '--port-range'],
      [{ portRange: 'a-b' }, {}, '--port-range'],
      [{}, { TITAN_WORKER_PORT_RANGE: '1-2-3' }, 'TITAN_WORKER_PORT_RANGE'],
      [{ advertiseAddr: 'http://10.0.0.1' }, {}, '--advertise-addr'],
      [{ advertiseAddr: '10.0.0.1:29500' }, {}, '--advertise-addr'],
      [{ advertiseAddr: '300.1.1.1' }, {}, '--advertise-addr'],
      [{ advertiseAddr: 'bad host' }, {}, '--advertise-addr'],
      [{ advertiseAddr: '-lead.example' }, {}, '--advertise-addr'],
      [{ advertiseAddr: '' }, {}, '--advertise-addr'],
    ];
    for (const [flags, env, field] of cases) {
      const err = await rejection(resolveWorkerConfig({ gpus: 'none', ...flags }, env));
      expect(isTitanError(err, 'InvalidInput'), `${JSON.stringify(flags)} ${JSON.stringify(env)}`).toBe(true);
      expect((err as Error).message).toContain(field);
    }
  });

  it('reads --port-range and --advertise-addr (an IP or a hostname)', async () => {
    const c = await resolveWorkerConfig({ gpus: 'none', portRange: '40000-40099', advertiseAddr: ' 127.0.0.1 ' }, {});
    expect(c.portRange).toEqual({ first: 40000, last: 40099 });
    expect(c.advertiseAddr).toBe('127.0.0.1');
    const env = { TITAN_WORKER_PORT_RANGE: '31000-31000', TITAN_WORKER_ADVERTISE_ADDR: 'gpu-01.example' };
    expect(await resolveWorkerConfig({ gpus: 'none' }, env)).toMatchObject({ portRange: { first: 31000, last: 31000 }, advertiseAddr: 'gpu-01.example' });
    for (const addr of ['fd00::1', '10.1.2.3', 'node-7', 'a.b.c']) {
      expect((await resolveWorkerConfig({ gpus: 'none', advertiseAddr: addr }, {})).advertiseAddr).toBe(addr);
    }
  });

  it('titan-worker exits 2 naming a bad --port-range or --advertise-addr, before it reaches etcd (nothing is registered)', () => {
    const main = path.resolve(import.meta.dirname, '../../dist/cmd/worker/main.js');
    for (const [args, flag] of [
      [['--port-range', '30000-29000'], '--port-range'],
      [['--advertise-addr', 'not an address'], '--advertise-addr'],
    ] as const) {
      const res = spawnSync(process.execPath, [main, '--endpoints', '127.0.0.1:9', '--gpus', 'none', ...args], { encoding: 'utf8', timeout: 20_000 });
      expect(res.status, res.stderr).toBe(2);
      expect(res.stderr).toContain(flag);
    }
  });

  it('reads GPU specs', () => {
    expect(parseGpuFlag('none', 'gpus')).toEqual([]);
    expect(parseGpuFlag('0', 'gpus')).toEqual([]);
    expect(parseGpuFlag('3', 'gpus').map((g) => g.index)).toEqual([0, 1, 2]);
    expect(parseGpuFlag('2, 0', 'gpus').map((g) => g.index)).toEqual([0, 2]);
  });
});
