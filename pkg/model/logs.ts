export type LogStream = 'stdout' | 'stderr';

/** One batch of output, stored as one etcd key. Entries keep the order the job wrote them. */
export interface LogChunk {
  seq: number;
  entries: LogEntry[];
}

export interface LogEntry {
  stream: LogStream;
  data: string;
}
