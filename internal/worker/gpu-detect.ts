import { execFile } from 'node:child_process';
import type { GpuDevice } from '../../pkg/model/index.js';

/** The query whose output parseNvidiaSmi reads; memory.total comes in MiB with nounits. */
export const NVIDIA_SMI_ARGS = ['--query-gpu=index,uuid,name,memory.total', '--format=csv,noheader,nounits'];

const MIB = 2 ** 20;

/**
 * Parses `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`.
 * Lines that do not start with an index are skipped (driver warnings share stdout).
 * The name sits between uuid and memory and may itself hold commas.
 */
export function parseNvidiaSmi(output: string): GpuDevice[] {
  const gpus: GpuDevice[] = [];
  for (const line of output.split(/\r?\n/)) {
    const fields = line.split(',').map((f) => f.trim());
    if (fields.length < 4 || !/^\d+$/.test(fields[0])) continue;
    const memoryMiB = Number(fields[fields.length - 1]);
    gpus.push({
      index: Number(fields[0]),
      uuid: fields[1] === '[N/A]' ? '' : fields[1],
      model: fields.slice(2, -1).join(', ') || 'unknown',
      // "[N/A]" on some boards: unknown, not an error.
      memory: Number.isFinite(memoryMiB) ? Math.round(memoryMiB * MIB) : 0,
    });
  }
  return gpus.sort((a, b) => a.index - b.index);
}

/** Runs nvidia-smi; no binary, no driver or a timeout all mean "this node has no GPUs". */
export function detectGpus(timeoutMs = 5000): Promise<GpuDevice[]> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', NVIDIA_SMI_ARGS, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => {
      resolve(err ? [] : parseNvidiaSmi(stdout));
    });
  });
}
