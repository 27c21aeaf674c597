import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CAP_ALLOWLIST, DEFAULT_PIDS_LIMIT } from '../../internal/worker/container-box.js';
import { resolveWorkerConfig, type WorkerFlags } from '../../internal/worker/config.js';
import { isTitanError, isReservedEnvKey, jobSpecBytes } from '../../pkg/model/index.js';

const WORKER_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/cmd/worker/main.js');

const resolve = (flags: WorkerFlags, env: Record<string, string> = {}) => resolveWorkerConfig({ gpus: 'none', nodeId: 'n1', ...flags }, env);

describe('worker config: executors and the job box', () => {
  it('defaults: Docker only; all caps dropped but Docker\'s set without NET_RAW; a pids cap; image user; writable root', async () => {
    const c = await resolve({});
    expect(c.executors).toEqual(['docker']);
    expect(c.box).toEqual({ capAdd: [...DEFAULT_CAP_ALLOWLIST], pidsLimit: DEFAULT_PIDS_LIMIT, readonlyRootfs: false });
    expect(c.box.capAdd).not.toContain('NET_RAW');
    expect(c.box.capAdd).toHaveLength(13);
    expect(c.shellUser).toBeUndefined();
  });

  it('reads every option from flags, and from the environment', async () => {
    const fromFlags = await resolve({
      executors: 'docker,shell',
      capAllowlist: 'cap_chown,KILL',
      pidsLimit: '256',
      jobUser: '1000:1000',
      readonlyRootfs: true,
      shellUser: '65534',
    });
    expect(fromFlags).toMatchObject({
      executors: ['docker', 'shell'],
      box: { capAdd: ['CHOWN', 'KILL'], pidsLimit: 256, user: '1000:1000', readonlyRootfs: true },
      shellUser: { uid: 65534 },
    });
    const fromEnv = await resolve({}, {
      TITAN_WORKER_EXECUTORS: 'shell',
      TITAN_WORKER_CAP_ALLOWLIST: 'none',
      TITAN_WORKER_PIDS_LIMIT: '100',
      TITAN_WORKER_JOB_USER: '7',
      TITAN_WORKER_READONLY_ROOTFS: 'true',
      TITAN_WORKER_SHELL_USER: '8:9',
    });
    expect(fromEnv).toMatchObject({
      executors: ['shell'],
      box: { capAdd: [], pidsLimit: 100, user: '7', readonlyRootfs: true },
      shellUser: { uid: 8, gid: 9 },
    });
  });

  it('rejects bad values naming the flag or variable', async () => {
    const cases: [WorkerFlags, Record<string, string>, RegExp][] = [
      [{ executors: 'docker,raw_exec' }, {}, /--executors: "raw_exec" is not docker or shell/],
      [{ executors: ' , ' }, {}, /--executors/],
      [{ capAllowlist: 'ALL' }, {}, /--cap-allowlist: ALL is not allowed/],
      [{ capAllowlist: 'CHOWN,FLY' }, {}, /--cap-allowlist: "FLY" is not a Linux capability/],
      [{ pidsLimit: '0' }, {}, /--pids-limit/],
      [{ pidsLimit: '8' }, {}, /--pids-limit: must be at least 16/],
      [{ pidsLimit: 'lots' }, {}, /--pids-limit/],
      [{ jobUser: 'root' }, {}, /--job-user: "root" is not uid or uid:gid/],
      [{ jobUser: '1:2:3' }, {}, /--job-user/],
      [{ readonlyRootfs: 'maybe' }, {}, /--readonly-rootfs/],
      [{ shellUser: 'nobody', executors: 'shell' }, {}, /--shell-user/],
      [{ shellUser: '65534' }, {}, /--shell-user: shell jobs are off on this worker/],
      [{}, { TITAN_WORKER_PIDS_LIMIT: '-1' }, /TITAN_WORKER_PIDS_LIMIT/],
      [{}, { TITAN_WORKER_EXECUTORS: 'vm' }, /TITAN_WORKER_EXECUTORS/],
      [{}, { TITAN_WORKER_READONLY_ROOTFS: 'yes please' }, /TITAN_WORKER_READONLY_ROOTFS/],
    ];
    for (const [flags, env, message] of cases) {
      const err = await resolve(flags, env).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTitanError(err, 'InvalidInput'), `${JSON.stringify(flags)} ${JSON.stringify(env)}`).toBe(true);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('titan-worker exits 2 with one line naming the bad flag, before it reaches etcd', () => {
    for (const [args, flag] of [
      [['--pids-limit', '3'], '--pids-limit'],
      [['--cap-allowlist', 'NET_RAW,BOGUS'], '--cap-allowlist'],
      [['--executors', 'docker,vm'], '--executors'],
      [['--job-user', 'alice'], '--job-user'],
    ] as const) {
      const res = spawnSync(process.execPath, [WORKER_MAIN, '--endpoints', '127.0.0.1:9', '--gpus', 'none', ...args], { encoding: 'utf8', timeout: 20_000 });
      expect(res.status, res.stderr).toBe(2);
      expect(res.stderr).toContain(flag);
    }
  });
});

describe('job specs: reserved env keys and their size', () => {
  it('reserves NVIDIA_*, CUDA_VISIBLE_DEVICES and TITAN_*, nothing else', () => {
    for (const key of ['NVIDIA_VISIBLE_DEVICES', 'NVIDIA_DRIVER_CAPABILITIES', 'CUDA_VISIBLE_DEVICES', 'TITAN_JOB_ID', 'TITAN_ANYTHING']) {
      expect(isReservedEnvKey(key), key).toBe(true);
    }
    for (const key of ['NVIDIA', 'CUDA_HOME', 'MY_TITAN_X', 'PATH', 'titan_job_id']) expect(isReservedEnvKey(key), key).toBe(false);
  });

  it('counts the UTF-8 bytes of command, env and labels', () => {
    expect(jobSpecBytes({ command: ['/bin/sh', '-c', 'é'], env: { A: 'bc' }, labels: { k: 'v' } })).toBe(7 + 2 + 2 + 3 + 2);
  });
});
