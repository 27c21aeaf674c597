import { describe, expect, it } from 'vitest';
import { parseNvidiaSmi } from '../../internal/worker/gpu-detect.js';

describe('parseNvidiaSmi', () => {
  it('reads index, uuid, model and memory (MiB) per line', () => {
    const out = [
      '0, GPU-1a2b3c4d-0000-1111-2222-333344445555, NVIDIA A100-SXM4-40GB, 40960',
      '1, GPU-99999999-0000-1111-2222-333344445555, NVIDIA A100-SXM4-40GB, 40960',
      '',
    ].join('\n');
    expect(parseNvidiaSmi(out)).toEqual([
      { index: 0, uuid: 'GPU-1a2b3c4d-0000-1111-2222-333344445555', model: 'NVIDIA A100-SXM4-40GB', memory: 40960 * 2 ** 20 },
      { index: 1, uuid: 'GPU-99999999-0000-1111-2222-333344445555', model: 'NVIDIA A100-SXM4-40GB', memory: 40960 * 2 ** 20 },
    ]);
  });

  it('keeps commas inside the model name, tolerates CRLF and sorts by index', () => {
    const out = '1, GPU-b, Tesla T4, rev 2, 15360\r\n0, GPU-a, Tesla T4, 15360\r\n';
    const gpus = parseNvidiaSmi(out);
    expect(gpus.map((g) => g.index)).toEqual([0, 1]);
    expect(gpus[1].model).toBe('Tesla T4, rev 2');
  });

  it('treats [N/A] as unknown and skips lines that are not GPU rows', () => {
    const out = 'WARNING: infoROM is corrupted at gpu 0000:00:04.0\n0, [N/A], GeForce GTX 1080, [N/A]\n';
    expect(parseNvidiaSmi(out)).toEqual([{ index: 0, uuid: '', model: 'GeForce GTX 1080', memory: 0 }]);
  });

  it('returns nothing for empty output', () => {
    expect(parseNvidiaSmi('')).toEqual([]);
    expect(parseNvidiaSmi('No devices were found\n')).toEqual([]);
  });
});
