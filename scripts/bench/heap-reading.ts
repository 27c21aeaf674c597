import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The built heap-probe.js beside this module. */
const BUILT_PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'heap-probe.js');

/** The environment that loads heap-probe.js into a Node.js process (and its Node.js children), writing to `dir`. */
export function heapProbeEnv(dir: string, probe = BUILT_PROBE): NodeJS.ProcessEnv {
  return { NODE_OPTIONS: `--import=${pathToFileURL(probe).href}`, TITAN_HEAP_PROBE_DIR: dir };
}

/**
 * The live heap of a process that loaded heap-probe.js, in MiB, after a full
 * collection: asks with SIGUSR2 and waits (up to `timeoutMs`) for its answer.
 * Undefined when there is no such process or no answer.
 */
export async function liveHeapMiB(dir: string, pid: number | undefined, timeoutMs = 5000): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  const file = path.join(dir, `heap-${pid}.txt`);
  const lines = (): string[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
  const before = lines().length;
  try {
    process.kill(pid, 'SIGUSR2');
  } catch {
    return undefined;
  }
  for (const until = Date.now() + timeoutMs; Date.now() < until; ) {
    const now = lines();
    if (now.length > before) return Number(now[now.length - 1]) / 2 ** 20;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}
