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
