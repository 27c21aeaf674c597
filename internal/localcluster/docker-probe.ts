import Docker from 'dockerode';

const DOCKER_PING_MS = 2000;

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

