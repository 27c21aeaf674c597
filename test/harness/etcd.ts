import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { track } from './watchdog.js';

export interface EtcdServer {
  /** "127.0.0.1:PORT" (client URL without scheme; https with `tls`). */
  endpoints: string;
  /** "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT". */
  url: string;
  dataDir: string;
  /** pid of the current etcd process (changes after restart). */
  pid: number;
  /** Graceful stop, then remove the data dir. */
  stop(): Promise<void>;
  /** Send a signal (default SIGKILL) and wait for exit; data dir is kept. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start again with the same ports and data dir. */
  restart(): Promise<void>;
}

const INSTALL_HINT =
  'etcd binary not found. Install it with `apt-get install -y etcd-server` ' +
  '(or run ./scripts/test.sh, which installs it), or set ETCD_BIN=/path/to/etcd.';
const READY_TIMEOUT_MS = 20_000;

function binaryExists(bin: string): boolean {
  if (bin.includes('/')) return fs.existsSync(bin);
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .some((d) => d && fs.existsSync(path.join(d, bin)));
}

function childEnv(): NodeJS.ProcessEnv {
  // etcd reads ETCD_* env vars as flags; don't leak ours (e.g. ETCD_BIN) into it.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD_')) env[k] = v;
  return env;
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function healthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, {
      signal: AbortSignal.timeout(1000),
    });
    const body = (await res.json()) as { health?: unknown };
    return body.health === 'true';
  } catch {
    return false;
  }
}

export interface EtcdOptions {
  name?: string;
  /**
   * Serve clients over TLS with the certificates of scripts/pki.sh in this
   * directory (server.pem, server-key.pem, ca.pem); default plain http.
   */
  tls?: { pkiDir: string; /** --client-cert-auth: the client certificate's CN is the etcd user. */ clientCertAuth?: boolean };
  /** More etcd flags, e.g. ['--auth-token', 'simple', '--auth-token-ttl', '2']. */
  args?: string[];
}

export async function startEtcd(opts: EtcdOptions = {}): Promise<EtcdServer> {
  const bin = process.env.ETCD_BIN ?? 'etcd';
  if (!binaryExists(bin)) throw new Error(INSTALL_HINT);

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `titan-etcd-${opts.name ?? 'test'}-`));
  track('dir', true, dataDir);
  let clientPort = 0;
  let peerPort = 0;
  // With TLS, /health is served in plain http on a metrics port of its own.
  let healthPort = 0;
  const scheme = opts.tls ? 'https' : 'http';
  const clientUrl = () => `${scheme}://127.0.0.1:${clientPort}`;
  const tlsArgs = (): string[] => {
    if (!opts.tls) return [];
    const dir = opts.tls.pkiDir;
    return [
      '--cert-file', path.join(dir, 'server.pem'),
      '--key-file', path.join(dir, 'server-key.pem'),
      // etcd asks every client for a certificate once it has a trusted CA.
      ...(opts.tls.clientCertAuth ? ['--trusted-ca-file', path.join(dir, 'ca.pem'), '--client-cert-auth'] : []),
      '--listen-metrics-urls', `http://127.0.0.1:${healthPort}`,
    ];
  };
  const args = () => {
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    return [
      '--name', 'default',
      '--data-dir', dataDir,
      '--listen-client-urls', clientUrl(),
      '--advertise-client-urls', clientUrl(),
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `default=${peerUrl}`,
      '--auto-compaction-retention', '0',
      ...tlsArgs(),
      ...(opts.args ?? []),
    ];
  };

  let child: ChildProcess | undefined;
  let stderrTail = '';

  async function launch(): Promise<void> {
    stderrTail = '';
    const c = spawn(bin, args(), { env: childEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    const pid = c.pid;
    if (pid !== undefined) {
      track('pid', true, pid);
      c.once('exit', () => track('pid', false, pid));
    }
    c.stderr?.on('data', (d: Buffer) => {
      stderrTail = (stderrTail + d.toString()).slice(-4000);
    });
    let spawnError: Error | undefined;
    c.once('error', (e: NodeJS.ErrnoException) => {
      spawnError = e.code === 'ENOENT' ? new Error(INSTALL_HINT) : e;
    });

    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (spawnError) throw spawnError;
      if (c.exitCode !== null || c.signalCode !== null) {
        throw new Error(`etcd exited early (code ${c.exitCode}, signal ${c.signalCode}):\n${stderrTail}`);
      }
      if (await healthy(opts.tls ? healthPort : clientPort)) return;
      if (Date.now() > deadline) {
        c.kill('SIGKILL');
        await waitExit(c);
        throw new Error(`etcd not healthy after ${READY_TIMEOUT_MS} ms on ${clientUrl()}:\n${stderrTail}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill(signal);
    await waitExit(c);
  }

  // freePort() can race with other processes; retry with fresh ports if so.
  for (let attempt = 1; ; attempt++) {
    clientPort = await freePort();
    peerPort = await freePort();
    if (opts.tls) healthPort = await freePort();
    try {
      await launch();
      break;
    } catch (e) {
      const inUse = /address already in use/i.test(String(e));
      if (!inUse || attempt >= 3) {
        fs.rmSync(dataDir, { recursive: true, force: true });
        track('dir', false, dataDir);
        throw e;
      }
      // A half-initialised member dir would pin the old peer URL.
      fs.rmSync(dataDir, { recursive: true, force: true });
      fs.mkdirSync(dataDir);
    }
  }

  const server: EtcdServer = {
    endpoints: `127.0.0.1:${clientPort}`,
    url: clientUrl(),
    dataDir,
    pid: child!.pid ?? -1,
    kill,
    async stop() {
      const c = child;
      if (c && c.exitCode === null && c.signalCode === null) {
        const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
        await kill('SIGTERM');
        clearTimeout(timer);
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
      track('dir', false, dataDir);
    },
    async restart() {
      await kill('SIGKILL');
      await launch();
      server.pid = child!.pid ?? -1;
    },
  };
  return server;
}
