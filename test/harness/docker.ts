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
