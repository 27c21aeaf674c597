import type Docker from 'dockerode';

export interface RawRunResult {
  containers: number;
  seconds: number;
  perSec: number;
  failures: number;
}

/**
 * The baseline: the same short containers straight through the Docker API
 * (create, start, wait, remove), `parallel` at a time, no Titan involved.
 */
export async function runRawContainers(
  docker: Docker,
  options: { image: string; command: string[]; cpu: number; memory: number; count: number; parallel: number; label: string },
): Promise<RawRunResult> {
  let next = 0;
  let failures = 0;
  const one = async (): Promise<void> => {
    const container = await docker.createContainer({
      Image: options.image,
      Cmd: options.command,
      Labels: { 'titan.bench': options.label },
      // The limits a Titan job of the same resources gets (millicores → NanoCpus).
      HostConfig: { NetworkMode: 'none', NanoCpus: options.cpu * 1e6, Memory: options.memory },
    });
    try {
      await container.start();
      const result = (await container.wait()) as { StatusCode?: number };
      if (result.StatusCode !== 0) failures++;
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  };
  const lane = async (): Promise<void> => {
    while (next < options.count) {
      next++;
      await one().catch(() => {
        failures++;
      });
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(options.parallel, options.count) }, lane));
  const seconds = (performance.now() - started) / 1000;
  return { containers: options.count, seconds, perSec: options.count / seconds, failures };
}

/** Force-removes every container carrying label=value (cleanup). */
export async function removeLabelled(docker: Docker, label: string, value: string): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${label}=${value}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  return list.length;
}

/** How many containers carrying label=value exist (running or not). */
export async function countLabelled(docker: Docker, label: string, value: string): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${label}=${value}`] } });
  return list.length;
}
