import { describe, expect, it } from 'vitest';
import { slurmConf, slurmFiles, type SlurmConfInput } from '../../scripts/bench-e2e/slurm-conf.js';
import { findSlurmTools } from '../../scripts/bench-e2e/slurm-cluster.js';
import { parseJobId, sbatchArgs } from '../../scripts/bench-e2e/slurm-peer.js';

const input: SlurmConfInput = { dir: '/tmp/titan-slurm-abc', host: 'vm', slots: 64, memoryMiB: 65536, ctldPort: 41001, slurmdPort: 41002, maxJobs: 600, mungeSocket: '/tmp/titan-slurm-abc/munge.sock' };

/** key=value pairs of slurm.conf, the NodeName and PartitionName lines split into theirs. */
function settings(text: string): Map<string, string> {
  const pairs = text.split('\n').filter((l) => l && !l.startsWith('#')).flatMap((l) => l.split(/\s+/));
  return new Map(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
}

describe('bench:e2e --peer slurm: slurm.conf', () => {
  const text = slurmConf(input);
  const conf = settings(text);

  it('uses 127.0.0.1 for every address', () => {
    const addresses = text.match(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g) ?? [];
    expect(addresses.length).toBeGreaterThanOrEqual(2);
    expect(new Set(addresses)).toEqual(new Set(['127.0.0.1']));
    expect(conf.get('SlurmctldHost')).toBe('vm(127.0.0.1)');
    expect(conf.get('NodeAddr')).toBe('127.0.0.1');
    expect(conf.get('SlurmctldPort')).toBe('41001');
    expect(conf.get('SlurmdPort')).toBe('41002');
  });

  it('gives the node as many CPUs as the Titan worker, trusted over the hardware', () => {
    expect(conf.get('NodeName')).toBe('vm');
    expect(conf.get('CPUs')).toBe('64');
    expect(settings(slurmConf({ ...input, slots: 8 })).get('CPUs')).toBe('8');
    expect(conf.get('RealMemory')).toBe('65536');
    expect(conf.get('SlurmdParameters')).toBe('config_overrides');
    expect(conf.get('SelectType')).toBe('select/cons_tres');
    expect(conf.get('SelectTypeParameters')).toBe('CR_CPU');
  });

  it('needs no accounting daemon and keeps its files in the temp dir', () => {
    expect(conf.get('AccountingStorageType')).toBe('accounting_storage/none');
    expect(conf.get('JobAcctGatherType')).toBe('jobacct_gather/none');
    expect(conf.get('SlurmUser')).toBe('root');
    expect(conf.get('AuthInfo')).toBe(`socket=${input.mungeSocket}`);
    for (const key of ['StateSaveLocation', 'SlurmdSpoolDir', 'SlurmctldLogFile', 'SlurmdLogFile', 'SlurmctldPidFile', 'SlurmdPidFile']) expect(conf.get(key)?.startsWith(`${input.dir}/`)).toBe(true);
    expect(conf.get('SlurmctldLogFile')).toBe(slurmFiles(input.dir).ctldLog);
  });

  it('holds every task of the run', () => {
    expect(Number(conf.get('MaxArraySize'))).toBeGreaterThan(600);
    expect(Number(settings(slurmConf({ ...input, maxJobs: 50_000 })).get('MaxArraySize'))).toBeGreaterThan(50_000);
    expect(Number(settings(slurmConf({ ...input, maxJobs: 50_000 })).get('MaxJobCount'))).toBeGreaterThanOrEqual(50_000);
  });
});

describe('bench:e2e --peer slurm: sbatch', () => {
  it('submits N tasks of true, 1 CPU each, as one array', () => {
    const args = sbatchArgs(300, '/tmp/d/round-1', 32);
    expect(args).toContain('--array=0-299');
    expect(args).toContain('--cpus-per-task=1');
    expect(args).toContain('--mem=32M');
    expect(args.slice(-2)).toEqual(['--wrap', 'true']);
    expect(args[args.indexOf('-o') + 1]).toBe('/tmp/d/round-1/%a');
  });

  it('reads the job id of --parsable', () => {
    expect(parseJobId('123\n')).toBe('123');
    expect(parseJobId('45;titanbench\n')).toBe('45');
    expect(parseJobId('sbatch: error: x')).toBeUndefined();
  });
});

describe('bench:e2e --peer slurm: missing packages', () => {
  it('names the missing tools and the command that installs them', () => {
    expect(() => findSlurmTools(['/nonexistent'])).toThrow(/slurmctld, slurmd, sbatch.*ensure_slurm.*apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge/);
  });
});
