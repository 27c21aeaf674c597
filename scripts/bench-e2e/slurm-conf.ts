import path from 'node:path';

/**
 * The slurm.conf of the bench's private Slurm (Debian's slurm-wlm 22.05):
 * one controller and one node on this host, every address 127.0.0.1, the
 * node offering as many CPUs as the Titan worker (`--slots`) whatever the
 * hardware has (SlurmdParameters=config_overrides), no accounting daemon, all
 * state and logs in the bench's temp dir. Pure: the files it names are the
 * caller's to create.
 */

export interface SlurmConfInput {
  /** The temp dir holding the state, spool, pid and log files. */
  dir: string;
  /** This host's short name (`hostname -s`): slurmctld checks it against SlurmctldHost. */
  host: string;
  /** CPUs of the node, as the Titan worker's --cpu. */
  slots: number;
  /** Memory of the node, MiB. */
  memoryMiB: number;
  ctldPort: number;
  slurmdPort: number;
  /** Jobs the controller must hold at once (array tasks count one each). */
  maxJobs: number;
  mungeSocket: string;
}

/** Files in the temp dir the configuration names (and the bench reads). */
export function slurmFiles(dir: string): { conf: string; ctldLog: string; slurmdLog: string; stateDir: string; spoolDir: string } {
  return {
    conf: path.join(dir, 'slurm.conf'),
    ctldLog: path.join(dir, 'slurmctld.log'),
    slurmdLog: path.join(dir, 'slurmd.log'),
    stateDir: path.join(dir, 'ctld-state'),
    spoolDir: path.join(dir, 'slurmd-spool'),
  };
}

export const LOOPBACK = '127.0.0.1';
export const PARTITION = 'bench';

export function slurmConf(input: SlurmConfInput): string {
  const files = slurmFiles(input.dir);
  const settings: [string, string | number][] = [
    ['ClusterName', 'titanbench'],
    ['SlurmctldHost', `${input.host}(${LOOPBACK})`],
    ['SlurmctldPort', input.ctldPort],
    ['SlurmdPort', input.slurmdPort],
    // slurmd binds the node's address (127.0.0.1) rather than every interface.
    ['CommunicationParameters', 'NoInAddrAny'],
    ['SlurmUser', 'root'],
    ['SlurmdUser', 'root'],
    ['AuthType', 'auth/munge'],
    ['CredType', 'cred/munge'],
    ['AuthInfo', `socket=${input.mungeSocket}`],
    ['StateSaveLocation', files.stateDir],
    ['SlurmdSpoolDir', files.spoolDir],
    ['SlurmctldPidFile', path.join(input.dir, 'slurmctld.pid')],
    ['SlurmdPidFile', path.join(input.dir, 'slurmd.pid')],
    ['SlurmctldLogFile', files.ctldLog],
    ['SlurmdLogFile', files.slurmdLog],
    ['SlurmctldDebug', 'info'],
    ['SlurmdDebug', 'info'],
    ['ProctrackType', 'proctrack/linuxproc'],
    ['TaskPlugin', 'task/none'],
    ['JobAcctGatherType', 'jobacct_gather/none'],
    ['AccountingStorageType', 'accounting_storage/none'],
    ['JobCompType', 'jobcomp/none'],
    ['SchedulerType', 'sched/backfill'],
    ['SelectType', 'select/cons_tres'],
    ['SelectTypeParameters', 'CR_CPU'],
    ['MaxArraySize', Math.max(1001, input.maxJobs + 1)],
    ['MaxJobCount', Math.max(10_000, 2 * input.maxJobs)],
    // The node claims more CPUs than this machine has: trust the configuration.
    ['SlurmdParameters', 'config_overrides'],
    ['ReturnToService', 2],
    ['MpiDefault', 'none'],
    ['MailProg', '/bin/true'],
  ];
  const node = `NodeName=${input.host} NodeHostname=${input.host} NodeAddr=${LOOPBACK} CPUs=${input.slots} RealMemory=${input.memoryMiB} State=UNKNOWN`;
  const partition = `PartitionName=${PARTITION} Nodes=${input.host} Default=YES MaxTime=INFINITE State=UP`;
  return ['# Written by npm run bench:e2e -- --peer slurm', ...settings.map(([k, v]) => `${k}=${v}`), node, partition, ''].join('\n');
}
