/**
 * What the leader publishes while etcd's database is near its quota
 * (keys.storageAlarm()): submits are refused until it is gone.
 */
export interface StorageAlarm {
  since: number;
  /** etcd's database size (what its quota counts) and the part in use, bytes. */
  dbSize: number;
  dbSizeInUse: number;
  quotaBytes: number;
  /** etcd itself raised NOSPACE: it refuses every write until an operator disarms it. */
  nospace: boolean;
}

const MiB = 2 ** 20;

/** The one-line refusal a submitter sees. */
export function storageFullMessage(alarm: Partial<StorageAlarm> | undefined): string {
  const size =
    alarm?.dbSize !== undefined && alarm.quotaBytes !== undefined
      ? ` (etcd's database is ${(alarm.dbSize / MiB).toFixed(1)} MiB of its ${(alarm.quotaBytes / MiB).toFixed(0)} MiB quota)`
      : '';
  const fix = alarm?.nospace
    ? "etcd raised its NOSPACE alarm: an operator must compact and defragment etcd, then run 'etcdctl alarm disarm'"
    : 'the master is removing ended jobs faster; try again later, or lower --retain, or raise etcd --quota-backend-bytes with the master\'s --etcd-quota-bytes';
  return `cluster storage full${size}: new jobs are refused, running jobs go on; ${fix}`;
}
