import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { createLogger } from '../../pkg/log/logger.js';
import { TitanError, invalidInput } from '../../pkg/model/errors.js';
import { parseInteger } from '../../pkg/model/parse.js';
import { onShutdown } from '../../pkg/process/shutdown.js';
import { Master, resolveMasterConfig } from '../master/index.js';
import { Worker, resolveWorkerConfig } from '../worker/index.js';
import type { CliConfig } from './context.js';
import type { CliIO } from './io.js';

export interface DevFlags {
  dataDir?: string;
  port?: string;
  cpu?: string;
  memory?: string;
  gpus?: string;
}

export const DEFAULT_DEV_PORT = 2379;
const HEALTH_TIMEOUT_MS = 20_000;
const DOCKER_PING_MS = 2000;
const INSTALL_HINT = 'install it with `apt-get install etcd-server` (Debian/Ubuntu), or set ETCD_BIN=/path/to/etcd';

/** ETCD_BIN, else `etcd` on PATH; a clear error when there is none. */
export function findEtcdBinary(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.ETCD_BIN;
  if (configured) {
    if (!fs.existsSync(configured)) throw new TitanError('Unavailable', `ETCD_BIN=${configured} does not exist; ${INSTALL_HINT}`);
    return configured;
  }
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'etcd');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {}
  }
  throw new TitanError('Unavailable', `etcd binary not found on PATH; ${INSTALL_HINT}`);
}

export function parsePort(text: string, field = 'port'): number {
  const port = parseInteger(text, field);
  if (port < 1 || port > 65535) throw invalidInput(field, `${port} is not a TCP port (1-65535)`);
  return port;
}

/** Whether 127.0.0.1:port can be bound right now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** A dockerode client for DOCKER_HOST (unix:// or tcp://) or the default socket. */
export function dockerFromEnv(env: NodeJS.ProcessEnv = process.env): { docker: Docker; where: string } {
  const host = env.DOCKER_HOST;
  if (!host) return { docker: new Docker({ socketPath: '/var/run/docker.sock' }), where: 'unix:///var/run/docker.sock' };
  if (host.startsWith('unix://')) return { docker: new Docker({ socketPath: host.slice('unix://'.length) }), where: host };
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return { docker: new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' }), where: host };
}

/** Pings Docker with a deadline; says where it looked and, when unreachable, why. */
export async function probeDocker(env: NodeJS.ProcessEnv = process.env, timeoutMs = DOCKER_PING_MS): Promise<{ ok: boolean; where: string; why?: string }> {
  let where = env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  let timer: NodeJS.Timeout | undefined;
  try {
    const client = dockerFromEnv(env);
    where = client.where;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    await Promise.race([client.docker.ping(), timeout]);
    return { ok: true, where };
  } catch (err) {
    return { ok: false, where, why: (err as Error).message.split('\n')[0] };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

async function etcdHealthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: unknown };
    return body.health === 'true';
  } catch {
    return false;
  }
}

function tail(file: string, bytes = 2000): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-bytes).trim();
  } catch {
    return '';
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess, killAfterMs: number): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

interface EtcdProcess {
  child: ChildProcess;
  port: number;
  logFile: string;
  stop(): Promise<void>;
}

async function startEtcdServer(bin: string, dataDir: string, port: number, io: CliIO): Promise<EtcdProcess> {
  const peerPort = (await portIsFree(port + 1)) && port + 1 <= 65535 ? port + 1 : await anyFreePort();
  const clientUrl = `http://127.0.0.1:${port}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const logFile = path.join(dataDir, 'etcd.log');
  const logFd = fs.openSync(logFile, 'a');
  // etcd reads ETCD_* variables as flags; keep ours (ETCD_BIN) away from it.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(io.env)) if (!k.startsWith('ETCD_')) env[k] = v;
  const child = spawn(
    bin,
    [
      '--name', 'titan-dev',
      '--data-dir', path.join(dataDir, 'etcd'),
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `titan-dev=${peerUrl}`,
    ],
    // Its own process group: Ctrl-C in the terminal must reach only us, so the
    // worker and master can still talk to etcd while they shut down.
    { env, stdio: ['ignore', logFd, logFd], detached: true },
  );
  fs.closeSync(logFd);
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const stop = async (): Promise<void> => {
    if (exited(child)) return;
    child.kill('SIGTERM');
    await waitForExit(child, 10_000);
  };
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  for (;;) {
    if (spawnError) throw new TitanError('Unavailable', `cannot start ${bin}: ${spawnError.message}; ${INSTALL_HINT}`);
    if (exited(child)) {
      throw new TitanError('Unavailable', `etcd exited at start (code ${child.exitCode}); its log:\n${tail(logFile)}`);
    }
    if (await etcdHealthy(port)) return { child, port, logFile, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new TitanError('Unavailable', `etcd was not healthy within ${HEALTH_TIMEOUT_MS / 1000}s; its log:\n${tail(logFile)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * `titan dev`: etcd, a master and a worker in one process tree, for trying
 * Titan on one machine. Runs until SIGINT/SIGTERM, then stops the worker
 * (and its jobs), the master, and etcd, and removes a temporary data dir.
 */
export async function runDev(flags: DevFlags, config: CliConfig, io: CliIO): Promise<void> {
  const wantedPort = flags.port === undefined ? DEFAULT_DEV_PORT : parsePort(flags.port);
  const bin = findEtcdBinary(io.env);
  const say = (line: string): void => io.out(`${line}\n`);

  let port = wantedPort;
  if (!(await portIsFree(wantedPort))) {
    port = await anyFreePort();
    say(`titan dev: port ${wantedPort} is busy; using ${port} instead`);
  }
  const temporary = flags.dataDir === undefined;
  const dataDir = temporary ? fs.mkdtempSync(path.join(os.tmpdir(), 'titan-dev-')) : path.resolve(flags.dataDir ?? '.');
  fs.mkdirSync(dataDir, { recursive: true });
  const removeDataDir = (): void => {
    if (temporary) fs.rmSync(dataDir, { recursive: true, force: true });
  };

  const logger = createLogger('titan-dev', { verbose: config.verbose });
  const steps: { name: string; stop: () => Promise<void> }[] = [];
  let etcd: EtcdProcess | undefined;
  let stopping = false;
  // If this process dies without a clean stop, do not leave etcd behind.
  const killEtcd = (): void => {
    if (etcd && !exited(etcd.child)) etcd.child.kill('SIGKILL');
    removeDataDir();
  };
  process.once('exit', killEtcd);

  /** Stops what was started, newest first: worker, master, then etcd. */
  const stopAll = async (): Promise<void> => {
    for (const step of steps.splice(0).reverse()) {
      try {
        await step.stop();
      } catch (err) {
        logger.error({ err }, `stopping ${step.name} failed`);
      }
    }
    removeDataDir();
    process.removeListener('exit', killEtcd);
  };

  // Installed before anything starts: Ctrl-C at any moment lets the startup
  // step in progress finish, starts nothing more, and stops what is running.
  let startup: Promise<void> = Promise.resolve();
  onShutdown(logger, async () => {
    stopping = true;
    say('titan dev: stopping worker, master and etcd');
    await startup.catch(() => undefined);
    await stopAll();
    say('titan dev: stopped');
  });

  startup = (async () => {
    etcd = await startEtcdServer(bin, dataDir, port, io);
    const etcdProcess = etcd;
    steps.push({ name: 'etcd', stop: () => etcdProcess.stop() });
    const endpoints = `127.0.0.1:${port}`;
    say(`titan dev: etcd is up on ${endpoints} (data in ${dataDir}${temporary ? ', removed on exit' : ''})`);
    if (stopping) return;

    const master = new Master(resolveMasterConfig({ endpoints, prefix: config.prefix }, io.env), logger.child({ component: 'master' }));
    await master.start();
    steps.push({ name: 'master', stop: () => master.stop() });
    say('titan dev: master started');
    if (stopping) return;

    const docker = await probeDocker(io.env);
    const workerConfig = await resolveWorkerConfig(
      {
        endpoints,
        prefix: config.prefix,
        cpu: flags.cpu,
        memory: flags.memory,
        gpus: flags.gpus,
        network: 'host',
        docker: docker.ok ? 'on' : 'off',
      },
      io.env,
    );
    if (stopping) return;
    const worker = new Worker(workerConfig, logger.child({ component: 'worker' }));
    await worker.start();
    steps.push({ name: 'worker', stop: () => worker.stop({ stopJobs: true }) });
    say(
      docker.ok
        ? `titan dev: worker started; Docker executor ON (${docker.where}): --image and --shell jobs run`
        : `titan dev: worker started; Docker executor OFF (${docker.where}: ${docker.why ?? 'unreachable'}): shell jobs only`,
    );
    if (stopping) return;

    const envPrefix = `TITAN_ENDPOINTS=${endpoints}${config.prefix !== '/titan' ? ` TITAN_PREFIX=${config.prefix}` : ''}`;
    say('');
    say('Submit a job:');
    say(`  ${envPrefix} titan submit --shell 'echo hello' --wait`);
    say(`  ${envPrefix} titan submit --image busybox --cmd 'echo hi'${docker.ok ? '' : '   (needs Docker)'}`);
    say(`  ${envPrefix} titan list`);
    say('');
    say('titan dev: ready. Press Ctrl-C to stop.');
  })();

  try {
    await startup;
  } catch (err) {
    if (stopping) return waitForever(); // the shutdown handler stops everything and exits
    await stopAll();
    throw err;
  }
  if (stopping) return waitForever();

  // Runs until a signal ends the process; etcd dying under us ends it too.
  return new Promise<void>((_, reject) => {
    etcd?.child.once('exit', (code, signal) => {
      if (stopping) return;
      const detail = etcd ? tail(etcd.logFile, 1000) : '';
      void stopAll().finally(() =>
        reject(new TitanError('Unavailable', `etcd exited unexpectedly (code ${code}, signal ${signal})${detail ? `:\n${detail}` : ''}`)),
      );
    });
  });
}

/** The shutdown handler ends the process; nothing after this should run. */
function waitForever(): Promise<void> {
  return new Promise<void>(() => undefined);
}
