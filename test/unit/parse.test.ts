import { describe, expect, it } from 'vitest';
import { buildJobSpec, parseCpu, parseDuration, parseGpu, parseMemory, parseSpecFile, TitanError } from '../../pkg/model/index.js';

describe('resource parsing', () => {
  it.each([
    ['500m', 500],
    ['0.5', 500],
    ['2', 2000],
    ['1.25', 1250],
  ])('cpu %s → %i millicores', (input, expected) => expect(parseCpu(input)).toBe(expected));

  it.each(['-1', '0', 'abc', '2x', '0.0001', ''])('rejects cpu %s', (input) => {
    expect(() => parseCpu(input)).toThrow(TitanError);
  });

  it.each([
    ['512Mi', 512 * 2 ** 20],
    ['2Gi', 2 * 2 ** 30],
    ['1G', 1e9],
    ['1048576', 1048576],
    ['1.5Gi', 1.5 * 2 ** 30],
  ])('memory %s → %i bytes', (input, expected) => expect(parseMemory(input)).toBe(expected));

  it.each(['-5Mi', '10Xi', 'Mi', '0'])('rejects memory %s', (input) => {
    expect(() => parseMemory(input)).toThrow(/memory/);
  });

  it('gpu is milli-GPU: a share of one device, or whole devices', () => {
    expect(parseGpu('2')).toBe(2000);
    expect(parseGpu('0.25')).toBe(250);
    expect(parseGpu('1')).toBe(1000);
    expect(parseGpu(0)).toBe(0);
    expect(() => parseGpu('-1')).toThrow(/gpu/);
    expect(() => parseGpu('1.5')).toThrow(/share one GPU .* or take whole GPUs/);
    expect(() => parseGpu('0.0001')).toThrow(/finer than 1\/1000/);
  });

  it.each([
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['10', 10_000],
  ])('duration %s → %i ms', (input, expected) => expect(parseDuration(input)).toBe(expected));

  it.each(['', '5x', '1h 2m', 'm'])('rejects duration %s', (input) => {
    expect(() => parseDuration(input)).toThrow(TitanError);
  });
});

describe('job specs', () => {
  it('builds a docker job with sh -c for --cmd and defaults', () => {
    const spec = buildJobSpec({ image: 'busybox', cmd: 'echo hi', env: ['A=1'] });
    expect(spec).toMatchObject({
      kind: 'docker',
      image: 'busybox',
      command: ['/bin/sh', '-c', 'echo hi'],
      env: { A: '1' },
      priority: 0,
      resources: { cpu: 100, memory: 64 * 2 ** 20, gpuMilli: 0 },
    });
  });

  it('builds a shell job', () => {
    expect(buildJobSpec({ shell: 'exit 3', cpu: '1', memory: '1Gi' })).toMatchObject({
      kind: 'shell',
      command: ['/bin/sh', '-c', 'exit 3'],
      resources: { cpu: 1000, memory: 2 ** 30, gpuMilli: 0 },
    });
  });

  it.each([
    [{}, 'image'],
    [{ image: ' ' }, 'image'],
    [{ image: 'busybox', cmd: '' }, 'cmd'],
    [{ shell: '' }, 'shell'],
    [{ shell: 'x', image: 'busybox' }, 'shell'],
    [{ image: 'busybox', cpu: '-1' }, 'cpu'],
    [{ image: 'busybox', memory: '1Q' }, 'memory'],
    [{ image: 'busybox', env: ['NOEQUALS'] }, 'env'],
    [{ image: 'busybox', name: 'bad name' }, 'name'],
    [{ image: 'busybox', priority: 'high' }, 'priority'],
  ])('rejects %j naming field %s', (input, field) => {
    try {
      buildJobSpec(input);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(TitanError);
      expect((err as TitanError).code).toBe('InvalidInput');
      expect((err as TitanError).field).toBe(field);
    }
  });

  it('reads YAML and JSON spec files and rejects unknown fields', () => {
    expect(parseSpecFile('image: busybox\ncmd: echo hi\ncpu: 500m\n', 'job.yaml')).toEqual({ image: 'busybox', cmd: 'echo hi', cpu: '500m' });
    expect(parseSpecFile('{"shell": "true"}', 'job.json')).toEqual({ shell: 'true' });
    expect(() => parseSpecFile('image: busybox\ncpus: 2\n', 'job.yaml')).toThrow(/cpus: unknown field/);
    expect(() => parseSpecFile('{"image": "x", "extra": 1}', 'job.json')).toThrow(/extra: unknown field/);
    expect(() => parseSpecFile('image: [', 'job.yaml')).toThrow(/not valid YAML/);
  });
});
