import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { retryCall } from '../../pkg/concurrency/call-retry.js';
import { TitanError } from '../../pkg/model/errors.js';

// A single-member etcd as a child process on loopback: for `titan dev`, the
// chaos check and the benchmarks (production runs a real etcd cluster).

const HEALTH_TIMEOUT_MS = 20_000;
export const ETCD_INSTALL_HINT = 'install it with `apt-get install etcd-server` (Debian/Ubuntu), or set ETCD_BIN=/path/to/etcd';
const INSTALL_HINT = ETCD_INSTALL_HINT;

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

async function etcdHealthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: unknown };
    return body.health === 'true';
  } catch {
    return false;
  }
}

export function tail(file: string, bytes = 2000): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-bytes).trim();
  } catch {
    return '';
  }
}

export function exited(child: ChildProcess): boolean {
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

export interface EtcdProcess {
  child: ChildProcess;
  port: number;
  logFile: string;
  stop(): Promise<void>;
}

/** Serve clients over TLS, each presenting a certificate of the CA (--client-cert-auth): the CN is the etcd user. */
export interface EtcdServerTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export async function startEtcdServer(
  bin: string,
  dataDir: string,
  port: number,
  parentEnv: NodeJS.ProcessEnv = process.env,
  tls?: EtcdServerTls,
): Promise<EtcdProcess> {
  const peerPort = (await portIsFree(port + 1)) && port + 1 <= 65535 ? port + 1 : await anyFreePort();
  const clientUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  // With TLS, /health is served in plain http on a metrics port of its own.
  const healthPort = tls ? await anyFreePort() : port;
  const tlsArgs = tls
    ? [
        '--cert-file', tls.certFile,
        '--key-file', tls.keyFile,
        '--trusted-ca-file', tls.caFile,
        '--client-cert-auth',
        '--listen-metrics-urls', `http://127.0.0.1:${healthPort}`,
      ]
    : [];
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const logFile = path.join(dataDir, 'etcd.log');
  const logFd = fs.openSync(logFile, 'a');
  // etcd reads ETCD_* variables as flags; keep ours (ETCD_BIN) away from it.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(parentEnv)) if (!k.startsWith('ETCD_')) env[k] = v;
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
      ...tlsArgs,
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
  try {
    await retryCall(
      async () => {
        if (spawnError) throw new TitanError('Unavailable', `cannot start ${bin}: ${spawnError.message}; ${INSTALL_HINT}`);
        if (exited(child)) {
          throw new TitanError('Unavailable', `etcd exited at start (code ${child.exitCode}); its log:\n${tail(logFile)}`);
        }
        if (!(await etcdHealthy(healthPort))) throw new NotHealthyYet();
      },
      // Short waits: a starting etcd is healthy within a second or two.
      { retryable: (err) => err instanceof NotHealthyYet, initialDelayMs: 100, maxDelayMs: 500, budgetMs: HEALTH_TIMEOUT_MS },
    );
  } catch (err) {
    if (!(err instanceof NotHealthyYet)) throw err;
    await stop();
    throw new TitanError('Unavailable', `etcd was not healthy within ${HEALTH_TIMEOUT_MS / 1000}s; its log:\n${tail(logFile)}`);
  }
  return { child, port, logFile, stop };
}

/** A started etcd that does not say it is healthy yet. */
class NotHealthyYet extends Error {}

