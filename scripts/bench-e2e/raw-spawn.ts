import { spawn } from 'node:child_process';
import { ownCpuSeconds } from '../bench/proc-stats.js';

export interface RawSpawnResult {
  count: number;
  seconds: number;
  perSec: number;
  failures: number;
  /** CPU seconds this process spent spawning and reaping (its own, not the children's). */
  spawnerCpuSeconds: number;
}

/**
 * The reference for shell jobs: a plain Node.js loop spawning `sh -c
 * <command>`, `parallel` at a time, no Titan involved. What the machine
 * allows for short processes from a Node.js parent.
 */
export async function runRawSpawns(options: { command: string; count: number; parallel: number }): Promise<RawSpawnResult> {
  let next = 0;
  let failures = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const child = spawn('/bin/sh', ['-c', options.command], { stdio: 'ignore' });
      child.once('error', () => {
        failures++;
        resolve();
      });
      child.once('exit', (code) => {
        if (code !== 0) failures++;
        resolve();
      });
    });
  const lane = async (): Promise<void> => {
    while (next < options.count) {
      next++;
      await one();
    }
  };
  const cpuBefore = ownCpuSeconds();
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(options.parallel, options.count) }, lane));
  const seconds = (performance.now() - started) / 1000;
  return { count: options.count, seconds, perSec: options.count / seconds, failures, spawnerCpuSeconds: ownCpuSeconds() - cpuBefore };
}
