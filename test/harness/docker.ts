import Docker from 'dockerode';

export const TEST_IMAGE = process.env.TITAN_TEST_IMAGE ?? 'titan-test/busybox:latest';

const HINT = 'Run the suite via ./scripts/test.sh, which starts a private dockerd and builds the test image.';

/** dockerode client for $DOCKER_HOST (unix:// or tcp://), default /var/run/docker.sock. */
export function dockerClient(): Docker {
  const host = process.env.DOCKER_HOST;
  if (!host) return new Docker({ socketPath: '/var/run/docker.sock' });
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  const u = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: u.hostname, port: Number(u.port || 2375), protocol: 'http' });
}

/** Returns a working client or throws: docker-dependent tests must fail, never skip. */
export async function requireDocker(): Promise<Docker> {
  const docker = dockerClient();
  try {
    await docker.ping();
  } catch (e) {
    throw new Error(
      `Docker is not reachable (DOCKER_HOST=${process.env.DOCKER_HOST ?? '<unset>'}): ${String(e)}. ${HINT}`,
    );
  }
  try {
    await docker.getImage(TEST_IMAGE).inspect();
  } catch {
    throw new Error(`Test image ${TEST_IMAGE} is missing. ${HINT}`);
  }
  return docker;
}

/** Force-remove all containers matching a label filter ("key" or "key=value"). Returns count. */
export async function removeContainersByLabel(docker: Docker, label: string): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(
    list.map(async (c) => {
      try {
        await docker.getContainer(c.Id).remove({ force: true, v: true });
      } catch (e) {
        // Already gone (404) or removal in progress (409) is fine for cleanup.
        const code = (e as { statusCode?: number }).statusCode;
        if (code !== 404 && code !== 409) throw e;
      }
    }),
  );
  return list.length;
}

/** One event of the engine's log (`docker events`), as far as the tests read it. */
export interface DockerEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  timeNano: number;
}

/**
 * What the engine did to containers from `since` (ms) up to now: its event log,
 * read to the end (not followed), so an action the engine has taken is in it.
 * `which` is a container id, or a label filter ("key=value") for containers
 * that may be gone already.
 */
export async function containerEvents(docker: Docker, which: string | { label: string }, since: number): Promise<DockerEvent[]> {
  const until = Math.ceil(Date.now() / 1000) + 1;
  const filters = typeof which === 'string' ? { container: [which] } : { type: ['container' as const], label: [which.label] };
  const stream = await docker.getEvents({ since: Math.floor(since / 1000), until, filters });
  let text = '';
  for await (const chunk of stream as unknown as AsyncIterable<Buffer>) text += chunk.toString();
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as DockerEvent)
    .filter((e) => e.timeNano >= since * 1e6);
}

/** What a container has printed so far (its log read to now, not followed). */
export async function containerOutput(docker: Docker, id: string): Promise<{ stdout: string; stderr: string }> {
  return demuxLogs(await docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false }));
}

/** Split docker's multiplexed (non-TTY) log stream into stdout and stderr text. */
export function demuxLogs(buf: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const len = buf.readUInt32BE(i + 4);
    const chunk = buf.subarray(i + 8, i + 8 + len);
    (buf[i] === 2 ? err : out).push(chunk);
    i += 8 + len;
  }
  return { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

/** The file a gated command waits for (gatedCmd); openGate creates it. */
const GATE_FILE = '/tmp/titan-gate';

/**
 * A container command line that holds until the test opens its gate
 * (openGate), then runs `then` (without `then`: exits 0). Work that must not
 * start before a point the test chooses (the engine watching the container,
 * a follower reading its first lines) waits on the gate, not on a duration.
 * A gate never opened (the test died) ends it after 15 minutes with exit 1,
 * so a container left behind does not run forever.
 */
export function gatedCmd(then?: string): string {
  const hold = `i=0; until [ -e ${GATE_FILE} ] || [ $i -ge 900 ]; do sleep 1; i=$((i+1)); done; [ -e ${GATE_FILE} ]`;
  return then === undefined ? hold : `${hold} && { ${then}; }`;
}

/** Runs a command in a running container to its end: its exit code and output. */
export async function execIn(docker: Docker, containerId: string, cmd: string[]): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  for await (const chunk of stream as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  const { ExitCode } = await exec.inspect();
  return { exitCode: ExitCode, ...demuxLogs(Buffer.concat(chunks)) };
}

/** Opens a gatedCmd container's gate: a `touch` run in it, which must succeed. */
export async function openGate(docker: Docker, containerId: string): Promise<void> {
  const { exitCode, stderr } = await execIn(docker, containerId, ['touch', GATE_FILE]);
  if (exitCode !== 0) throw new Error(`touch ${GATE_FILE} in ${containerId} exited with ${exitCode}: ${stderr}`);
}

/**
 * A fork bomb that goes on until the container is killed, at any load. PID 1
 * is awk, which starts one burst after another with system(): a fork that
 * fails at the pids cap only makes that system() return -1, and awk tries
 * again. (A shell as PID 1 that forks exits with code 2 on its first failed
 * fork, and a burst alone dies out once its forks fail, so the box would be
 * full only for a moment.) Each burst is the classic `f|f&` shell bomb; its
 * processes end up children of awk, which reaps only its own system() shell,
 * so they hold their pids: the box stays at its cap (one below it for the
 * moment between two system() calls).
 */
export const FORK_BOMB_CMD = `exec awk 'BEGIN { while (1) system("f(){ f|f& }; f") }'`;
