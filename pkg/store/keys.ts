/**
 * The etcd key layout. This is the only place that builds or parses key
 * strings; docs/etcd-layout.md describes the same layout for operators.
 */
export type Collection = 'jobs' | 'nodes' | 'assign' | 'reports' | 'logs' | 'leader' | 'queues' | 'tokens';

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

export class Keys {
  /** e.g. "/titan"; no trailing slash. */
  readonly root: string;

  constructor(prefix = '/titan') {
    this.root = prefix.replace(/\/+$/, '');
  }

  /** Every key of the cluster: the root with its trailing separator (so /titan does not cover /titan2). */
  all(): string {
    return `${this.root}/`;
  }

  collection(name: Collection): string {
    return `${this.root}/${name}/`;
  }

  job(jobId: string): string {
    return `${this.root}/jobs/${jobId}`;
  }

  /** Every task of an array: their ids are the array id, `-` and the index (pkg/model/array.ts, arrayTaskId). */
  arrayTasks(arrayId: string): string {
    return `${this.root}/jobs/${arrayId}-`;
  }

  node(nodeId: string): string {
    return `${this.root}/nodes/${nodeId}`;
  }

  nodeAssignments(nodeId: string): string {
    return `${this.root}/assign/${nodeId}/`;
  }

  assignment(nodeId: string, jobId: string): string {
    return `${this.root}/assign/${nodeId}/${jobId}`;
  }

  /** What a node reports of the attempts it holds, one key per job: the node writes here, the master reads. */
  nodeReports(nodeId: string): string {
    return `${this.root}/reports/${nodeId}/`;
  }

  report(nodeId: string, jobId: string): string {
    return `${this.root}/reports/${nodeId}/${jobId}`;
  }

  /** Output a node stored: every chunk lives under the node that ran the attempt (its grant covers this prefix). */
  nodeLogs(nodeId: string): string {
    return `${this.root}/logs/${nodeId}/`;
  }

  jobLogs(nodeId: string, jobId: string): string {
    return `${this.root}/logs/${nodeId}/${jobId}/`;
  }

  attemptLogs(nodeId: string, jobId: string, attempt: number): string {
    return `${this.root}/logs/${nodeId}/${jobId}/${pad(attempt, 4)}/`;
  }

  /** Fixed-width numbers so lexical key order is write order. */
  logChunk(nodeId: string, jobId: string, attempt: number, seq: number): string {
    return `${this.attemptLogs(nodeId, jobId, attempt)}${pad(seq, 8)}`;
  }

  queue(name: string): string {
    return `${this.root}/queues/${name}`;
  }

  /** An API token's record (its hash, role and scope), by the token's public id. */
  token(tokenId: string): string {
    return `${this.root}/tokens/${tokenId}`;
  }

  leader(): string {
    return `${this.root}/leader`;
  }

  /** Present while etcd's database is near its quota (the leader's StorageWatch): Store.createJobs compares it absent. */
  storageAlarm(): string {
    return `${this.root}/storage-full`;
  }

  /** Which version of this layout the data under the prefix is in (pkg/store/layout.ts). */
  layout(): string {
    return `${this.root}/layout`;
  }

  /** The last path segment of a key under a collection: a job or node id, a queue name. */
  idOf(key: string): string {
    return key.slice(key.lastIndexOf('/') + 1);
  }

  /** `assign/<node>/<job>` → its node and job ids. */
  parseAssignment(key: string): { nodeId: string; jobId: string } {
    const rest = key.slice(this.collection('assign').length);
    const slash = rest.indexOf('/');
    return { nodeId: rest.slice(0, slash), jobId: rest.slice(slash + 1) };
  }

  /** `logs/<node>/<job>/<attempt>/<seq>` → its parts. */
  parseLogChunk(key: string): { nodeId: string; jobId: string; attempt: number; seq: number } {
    const [nodeId, jobId, attempt, seq] = key.slice(this.collection('logs').length).split('/');
    return { nodeId, jobId, attempt: Number(attempt), seq: Number(seq) };
  }

  /** `reports/<node>/<job>` → its node and job ids. */
  parseReport(key: string): { nodeId: string; jobId: string } {
    const rest = key.slice(this.collection('reports').length);
    const slash = rest.indexOf('/');
    return { nodeId: rest.slice(0, slash), jobId: rest.slice(slash + 1) };
  }
}
