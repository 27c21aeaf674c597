import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../cli/run-cli.js';
import { requireDocker, TEST_IMAGE } from '../harness/docker.js';
import { freePort } from '../harness/ports.js';
import { missingCommands } from '../harness/tools.js';
import { trackTeardown } from '../harness/watchdog.js';
import { ensureOfflineImages } from './offline-images.js';

// docker-compose.yml brought up for real (Debian's docker-compose 1.29) on the
// suite's Docker engine, from images made offline, every service on the host's
// network at free loopback ports; jobs submitted from the host with the CLI and
// through the master's API; `down -v`.

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');
/** Making the images and `up`: minutes on a busy machine the first time (later runs reuse the images). */
const BRING_UP_MS = 540_000;
const HINT = 'Run the suite via ./scripts/test.sh, which installs them (source scripts/lib/env.sh; ensure_packages).';

/** The host path of the engine's socket, which the workers mount. */
function dockerSocketPath(): string {
  const host = process.env.DOCKER_HOST;
  if (host === undefined || host === '') return '/var/run/docker.sock';
  if (!host.startsWith('unix://')) throw new Error(`DOCKER_HOST=${host}: the compose workers mount the engine's socket, so it must be unix://`);
  return host.slice('unix://'.length);
}

/** How long `version` may take: a Python start-up, seconds on a loaded machine (12 s seen); not a measure of anything. */
const VERSION_TIMEOUT_MS = 120_000;

async function composeCliWorks(cli: readonly string[]): Promise<boolean> {
  try {
    await run(cli[0], [...cli.slice(1), 'version'], { timeout: VERSION_TIMEOUT_MS });
    return true;
  } catch {
    return false;
  }
}

/**
 * What this file needs from the machine, said in one message: docker-compose
 * (that runs), the docker CLI, etcd (the cluster's etcd image is made from the
 * host's binary) and tar. Missing ones fail the tests, in CI and everywhere else.
 */
async function requireComposeTools(): Promise<void> {
  const missing = missingCommands(['docker-compose', 'docker', process.env.ETCD_BIN ?? 'etcd', 'tar']);
  if (missing.length > 0) throw new Error(`the compose test needs ${missing.join(', ')}, which ${missing.length === 1 ? 'is' : 'are'} not installed. ${HINT}`);
  try {
    await run('docker-compose', ['version'], { timeout: VERSION_TIMEOUT_MS });
  } catch (err) {
    throw new Error(`docker-compose is installed but \`docker-compose version\` failed: ${String(err)}. ${HINT}`);
  }
}

describe('docker-compose.yml', () => {
  const project = `titan-compose-${crypto.randomBytes(4).toString('hex')}`;
  // docker-compose gives up on an engine request after COMPOSE_HTTP_TIMEOUT s (60 by default): a loaded engine can take longer.
  const env: NodeJS.ProcessEnv = { ...process.env, COMPOSE_HTTP_TIMEOUT: process.env.COMPOSE_HTTP_TIMEOUT ?? '600' };
  const ports = { etcd: 0, peer: 0, api: 0 };
  let endpoints = '';
  const jobIds: string[] = [];
  let downDone = false;
  let teardown: string[] = [];

  // Deadlines are safety nets: on a loaded engine `up` alone took over 2 minutes.
  const compose = (args: readonly string[], timeout = 300_000) =>
    run('docker-compose', ['-p', project, '-f', COMPOSE_FILE, ...args], { cwd: ROOT, env, timeout, maxBuffer: 16 << 20 });

  /**
   * Why the cluster is not up. Each test fails with it: a beforeAll that throws
   * only marks the tests skipped, and a run would count no failure.
   */
  let setupError: unknown;
  beforeEach(() => {
    if (setupError !== undefined) throw setupError;
  });

  beforeAll(async () => {
    // Its own deadline, under the hook's: a hook that times out, too, would leave the tests skipped.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`the compose cluster was not up within ${BRING_UP_MS / 1000} s (image builds included)`)), BRING_UP_MS);
    });
    try {
      await Promise.race([bringUp(), late]);
    } catch (err) {
      setupError = err;
    } finally {
      clearTimeout(timer);
    }
  }, BRING_UP_MS + 60_000);

  async function bringUp(): Promise<void> {
    await requireComposeTools();
    await requireDocker();
    const started = Date.now();
    const images = await ensureOfflineImages();
    [ports.etcd, ports.peer, ports.api] = await Promise.all([freePort(), freePort(), freePort()]);
    endpoints = `127.0.0.1:${ports.etcd}`;
    Object.assign(env, {
      TITAN_IMAGE: images.titan,
      ETCD_IMAGE: images.etcd,
      TITAN_ETCD_PORT: String(ports.etcd),
      TITAN_ETCD_PEER_PORT: String(ports.peer),
      TITAN_API_PORT: String(ports.api),
      DOCKER_SOCK: dockerSocketPath(),
      TITAN_WORKER_NETWORK: 'none',
    });
    const dockerHost = process.env.DOCKER_HOST ? [`DOCKER_HOST=${process.env.DOCKER_HOST}`] : [];
    teardown = ['env', ...dockerHost, 'docker-compose', '-p', project, '-f', COMPOSE_FILE, 'down', '-v', '-t', '2'];
    trackTeardown(teardown, true);
    await compose(['up', '-d', '--no-build'], BRING_UP_MS);
    console.log(`compose cluster ${project} up after ${Date.now() - started} ms (image builds included)`);
  }

  afterAll(async () => {
    if (!downDone && teardown.length > 0) await compose(['down', '-v', '-t', '2']).catch(() => undefined);
    if (teardown.length > 0) trackTeardown(teardown, false);
  }, 360_000);

  it('is accepted by every compose CLI installed (docker-compose 1.29 and, if present, the docker plugin)', async () => {
    await compose(['config', '-q']);
    if (await composeCliWorks(['docker', 'compose'])) {
      await run('docker', ['compose', '-p', project, '-f', COMPOSE_FILE, 'config', '-q'], { cwd: ROOT, env, timeout: 30_000 });
    }
  });

  it('runs a job submitted from the host with the CLI, whose logs the CLI reads', async () => {
    await waitForCluster(endpoints, async () => (await compose(['logs', '--no-color', '--tail', '30'])).stdout);
    const submit = await runCli(['submit', '--image', TEST_IMAGE, '--cmd', 'echo hi from compose', '--wait', '--output', 'json'], { endpoints, timeoutMs: 60_000 });
    expect(submit.code, submit.stderr).toBe(0);
    const job = JSON.parse(submit.stdout) as { id: string; state: string; node: string };
    jobIds.push(job.id);
    expect(job.state).toBe('Succeeded');
    expect(['worker-1', 'worker-2']).toContain(job.node);
    const logs = await runCli(['logs', job.id], { endpoints });
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toBe('hi from compose\n');
  }, 420_000);

  it('serves the API and the dashboard on the host: a job submitted with a token and its logs read, as the README shows with curl', async () => {
    await waitForCluster(endpoints, async () => (await compose(['logs', '--no-color', '--tail', '30'])).stdout);
    const api = `http://127.0.0.1:${ports.api}`;
    const health = await fetch(`${api}/healthz`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { leader: boolean }).leader).toBe(true);
    const dashboard = await fetch(`${api}/ui/`);
    expect(dashboard.status).toBe(200);
    expect(dashboard.headers.get('content-type')).toMatch(/^text\/html/);

    // As the README shows: the secret alone on stdout.
    const created = await runCli(['token', 'create', '--role', 'submitter'], { endpoints });
    expect(created.code, created.stderr).toBe(0);
    const headers = { authorization: `Bearer ${created.stdout.trim()}` };
    const post = await fetch(`${api}/v1/jobs`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ image: TEST_IMAGE, cmd: 'echo hi from the api' }),
    });
    expect(post.status, await post.clone().text()).toBe(201);
    const { id } = (await post.json()) as { id: string };
    jobIds.push(id);
    let state: string | undefined;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      state = ((await (await fetch(`${api}/v1/jobs/${id}`, { headers })).json()) as { state?: string }).state;
      if (state === 'Succeeded' || state === 'Failed') break;
    }
    expect(state).toBe('Succeeded');
    const logs = await fetch(`${api}/v1/jobs/${id}/logs`, { headers });
    expect(logs.status).toBe(200);
    expect(await logs.text()).toContain('hi from the api\n');
    const cliLogs = await runCli(['logs', id], { endpoints });
    expect(cliLogs.stdout).toBe('hi from the api\n');

    // The CLI through the API, with no etcd address at all (TITAN_ADDR + TITAN_TOKEN, as the README shows).
    const viaApi = { env: { TITAN_ADDR: api, TITAN_TOKEN: created.stdout.trim() }, timeoutMs: 60_000 };
    const submitted = await runCli(['submit', '--image', TEST_IMAGE, '--cmd', 'echo hi through the api', '--wait'], { endpoints: '127.0.0.1:1', ...viaApi });
    expect(submitted.code, submitted.stderr).toBe(0);
    jobIds.push(submitted.stdout.trim());
    const apiLogs = await runCli(['logs', submitted.stdout.trim()], { endpoints: '127.0.0.1:1', ...viaApi });
    expect(apiLogs.stdout).toBe('hi through the api\n');
  }, 420_000);

  it('down -v leaves no container, volume or job container behind', async () => {
    const docker = await requireDocker();
    const byProject = { label: [`com.docker.compose.project=${project}`] };
    expect((await docker.listContainers({ all: true, filters: byProject })).length).toBe(4);
    await compose(['down', '-v', '-t', '10']);
    downDone = true;
    expect(await docker.listContainers({ all: true, filters: byProject })).toEqual([]);
    expect((await docker.listVolumes({ filters: byProject })).Volumes ?? []).toEqual([]);
    const volumes = (await docker.listVolumes()).Volumes ?? [];
    expect(volumes.map((v) => v.Name).filter((n) => n.startsWith(`${project}_`))).toEqual([]);
    for (const id of jobIds) {
      expect(await docker.listContainers({ all: true, filters: { label: [`titan.job=${id}`] } })).toEqual([]);
    }
  }, 360_000);
});

/** A safety net: the containers start in seconds on an idle machine. */
const CLUSTER_UP_MS = 300_000;

/** Both workers registered and a master leading (the nodes view names the policy only then). */
async function waitForCluster(endpoints: string, serviceLogs: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + CLUSTER_UP_MS;
  let last = '';
  while (Date.now() < deadline) {
    const res = await runCli(['nodes', '--output', 'json'], { endpoints, timeoutMs: 10_000 });
    last = `${res.stdout}${res.stderr}`;
    if (res.code === 0) {
      const nodes = JSON.parse(res.stdout) as { id: string; policy: string | null }[];
      if (nodes.length === 2 && nodes.every((n) => n.policy !== null)) return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const logs = await serviceLogs().catch((e: unknown) => String(e));
  throw new Error(`the compose cluster did not come up (two workers, a leading master) within ${CLUSTER_UP_MS / 1000} s; last answer:\n${last}\nservice logs:\n${logs}`);
}
