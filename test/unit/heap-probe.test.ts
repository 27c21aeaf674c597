import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { heapProbeEnv, liveHeapMiB } from '../../scripts/bench/heap-reading.js';

const PROBE = path.resolve(import.meta.dirname, '../../dist/scripts/bench/heap-probe.js');
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((f) => f()));

describe('the benches\' heap probe', () => {
  it('answers SIGUSR2 with the live heap after a full collection, each time asked', async () => {
    expect(fs.existsSync(PROBE)).toBe(true); // built by the test command's tsc step
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-heap-probe-'));
    // A process that holds a million small objects for as long as it lives, and makes garbage besides.
    const script = 'const held = Array.from({ length: 1e6 }, (_, i) => ({ i })); setInterval(() => Array.from({ length: 1000 }, () => ({ held })), 5); process.stdout.write("up\\n");';
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, ...heapProbeEnv(dir, PROBE) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(() => {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    });
    await new Promise((resolve) => child.stdout.once('data', resolve));
    const first = await liveHeapMiB(dir, child.pid);
    const second = await liveHeapMiB(dir, child.pid);
    const bare = await heapOfEmptyProcess(dir);
    expect((first ?? 0) - (bare ?? 0)).toBeGreaterThan(15);
    expect(Math.abs((second ?? 0) - (first ?? 0))).toBeLessThan(2);
  });

  it('says nothing for a process that is not there', async () => {
    expect(await liveHeapMiB(os.tmpdir(), undefined)).toBeUndefined();
    expect(await liveHeapMiB(os.tmpdir(), 2 ** 22 + 12345, 100)).toBeUndefined();
  });
});

/** The live heap of a process that holds nothing. */
async function heapOfEmptyProcess(dir: string): Promise<number | undefined> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => undefined, 1000); process.stdout.write("up\\n");'], { env: { ...process.env, ...heapProbeEnv(dir, PROBE) }, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve) => child.stdout.once('data', resolve));
    return await liveHeapMiB(dir, child.pid);
  } finally {
    child.kill('SIGKILL');
  }
}
