import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../pkg/log/logger.js';
import { TitanError, invalidInput } from '../../pkg/model/errors.js';
import { parseInteger } from '../../pkg/model/parse.js';
import { onShutdown } from '../../pkg/process/shutdown.js';
import { Master, resolveMasterConfig } from '../master/index.js';
import { Worker, resolveWorkerConfig } from '../worker/index.js';
import { probeDocker } from '../localcluster/docker-probe.js';
import { anyFreePort, exited, findEtcdBinary, portIsFree, startEtcdServer, tail, type EtcdProcess } from '../localcluster/etcd-process.js';
import { makeDevPki, type DevPki } from '../localcluster/dev-pki.js';
import { nodeUser } from '../../pkg/config/etcd-connection.js';
import { LOCAL_OPERATOR, setupLocalAuth } from './auth.js';
import { withStore, type CliConfig } from './context.js';
import { planToken } from './tokens.js';
import { startMasterApi } from '../api/master-api.js';
import type { CliIO } from './io.js';

export interface DevFlags {
  dataDir?: string;
  port?: string;
  cpu?: string;
  memory?: string;
  gpus?: string;
  /** etcd with TLS and client-certificate auth, auth set up, each component with its certificate. */
  secure?: boolean;
  /** The master's HTTP API and dashboard (default 4646; a free port if busy; `off`: none). */
  apiPort?: string;
}

export const DEFAULT_DEV_PORT = 2379;
export const DEFAULT_DEV_API_PORT = 4646;

export function parsePort(text: string, field = 'port'): number {
  const port = parseInteger(text, field);
  if (port < 1 || port > 65535) throw invalidInput(field, `${port} is not a TCP port (1-65535)`);
  return port;
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
    const nodeId = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(os.hostname()) ? os.hostname() : 'dev';
    const pki: DevPki | undefined = flags.secure ? makeDevPki(path.join(dataDir, 'pki'), [nodeId]) : undefined;
    etcd = await startEtcdServer(bin, dataDir, port, io.env, pki?.etcd);
    const etcdProcess = etcd;
    steps.push({ name: 'etcd', stop: () => etcdProcess.stop() });
    const endpoints = `127.0.0.1:${port}`;
    say(`titan dev: etcd is up on ${endpoints} (data in ${dataDir}${temporary ? ', removed on exit' : ''})`);
    if (stopping) return;
    if (pki) {
      await setupLocalAuth(endpoints, config.prefix, pki, [nodeId]);
      say(`titan dev: TLS with client certificates (${pki.dir}); etcd auth on: master, worker and you are each an etcd user`);
    }

    const master = new Master(resolveMasterConfig({ endpoints, prefix: config.prefix, ...pki?.flags('titan-master') }, io.env), logger.child({ component: 'master' }));
    await master.start();
    steps.push({ name: 'master', stop: () => master.stop() });
    say('titan dev: master started');
    if (stopping) return;

    let api: { url: string; secret: string } | undefined;
    if (flags.apiPort !== 'off') {
      const wantedApiPort = flags.apiPort === undefined ? DEFAULT_DEV_API_PORT : parsePort(flags.apiPort, 'api-port');
      const apiPort = (await portIsFree(wantedApiPort)) ? wantedApiPort : await anyFreePort();
      const server = await startMasterApi(master, { listen: `127.0.0.1:${apiPort}` }, logger.child({ component: 'api' }));
      steps.push({ name: 'API', stop: () => server.close() });
      // An admin token for whoever runs titan dev: the dashboard and TITAN_TOKEN need one.
      const { token, secret } = planToken({ role: 'admin', name: 'titan dev' });
      await withStore({ ...config, etcd: master.config.etcd }, (store) => store.createToken(token));
      api = { url: server.url, secret };
      say(`titan dev: API and dashboard on ${server.url} (dashboard ${server.url}/ui/)`);
    }
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
        ...(pki ? { nodeId, ...pki.flags(nodeUser(nodeId)) } : {}),
        docker: docker.ok ? 'on' : 'off',
        // A development cluster runs host processes too; a production worker needs --executors docker,shell for that.
        executors: 'docker,shell',
        // With the cluster's data (removed with it when temporary), not in /var/lib/titan.
        stateDir: path.join(dataDir, 'worker-state'),
      },
      io.env,
    );
    if (stopping) return;
    const worker = new Worker(workerConfig, logger.child({ component: 'worker' }));
    await worker.start();
    steps.push({ name: 'worker', stop: () => worker.stop({ stopJobs: true }) });
    say(
      docker.ok
        ? `titan dev: worker started; Docker executor ON (${docker.where}); shell executor ON: --image and --shell jobs run (--shell jobs as host processes of this user)`
        : `titan dev: worker started; Docker executor OFF (${docker.where}: ${docker.why ?? 'unreachable'}); shell executor ON: shell jobs only, as host processes of this user`,
    );
    if (stopping) return;

    let envPrefix = `TITAN_ENDPOINTS=${endpoints}${config.prefix !== '/titan' ? ` TITAN_PREFIX=${config.prefix}` : ''}`;
    say('');
    if (pki) {
      const vars = { TITAN_ENDPOINTS: `https://${endpoints}`, ...(config.prefix !== '/titan' ? { TITAN_PREFIX: config.prefix } : {}), ...pki.env(LOCAL_OPERATOR) };
      say(`Use the CLI as the operator ${LOCAL_OPERATOR}:`);
      say(`  export ${Object.entries(vars).map(([k, v]) => `${k}=${v}`).join(' ')}`);
      envPrefix = '';
    }
    say('Submit a job:');
    const run = envPrefix === '' ? 'titan' : `${envPrefix} titan`;
    say(`  ${run} submit --shell 'echo hello' --wait`);
    say(`  ${run} submit --image busybox --cmd 'echo hi'${docker.ok ? '' : '   (needs Docker)'}`);
    say(`  ${run} list`);
    if (api) {
      say('');
      say('Or through the HTTP API (the token is an admin token made for this run):');
      say(`  export TITAN_ADDR=${api.url} TITAN_TOKEN=${api.secret}`);
      say(`  curl -s -H "Authorization: Bearer $TITAN_TOKEN" -H 'content-type: application/json' -d '{"shell": "echo hi"}' $TITAN_ADDR/v1/jobs`);
      say(`  dashboard: ${api.url}/ui/ (log in with the token)`);
    }
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
