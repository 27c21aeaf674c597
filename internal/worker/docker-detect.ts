import Docker from 'dockerode';
import type { Logger } from '../../pkg/log/logger.js';
import { TitanError } from '../../pkg/model/index.js';
import type { DockerMode } from './config.js';
import { errorMessage } from './executor.js';

const PING_TIMEOUT_MS = 2000;

function dockerHost(): string {
  return process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

async function ping(docker: Docker, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    await Promise.race([docker.ping(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The Docker engine this node runs containers on, or undefined when it runs
 * shell jobs only. `on` insists on an engine; `auto` settles for none, loudly.
 */
export async function connectDocker(mode: DockerMode, logger: Logger): Promise<Docker | undefined> {
  if (mode === 'off') return undefined;
  try {
    // docker-modem reads DOCKER_HOST (unix://, tcp://) by itself.
    const docker = new Docker();
    await ping(docker, PING_TIMEOUT_MS);
    return docker;
  } catch (err) {
    const message = errorMessage(err);
    if (mode === 'on') {
      throw new TitanError(
        'Unavailable',
        `no Docker engine answered at ${dockerHost()} (${message}); start Docker, set DOCKER_HOST, or run with --docker auto|off`,
        { cause: err },
      );
    }
    logger.warn({ dockerHost: dockerHost(), reason: message }, 'no Docker engine answered: this node runs shell jobs only');
    return undefined;
  }
}
