export type LogStream = 'stdout' | 'stderr';

/** One batch of output, stored as one etcd key. Entries keep the order the job wrote them. */
export interface LogChunk {
  seq: number;
  entries: LogEntry[];
  /**
   * Container output only: per stream, the last Docker log message stored up
   * to and including this chunk. A worker that re-attaches to the container
   * resumes each stream right after its mark. Per stream, because Docker
   * keeps each stream in time order but not the two against each other.
   */
  until?: LogMarks;
}

/** Where one stream of a container's log stands. */
export interface LogMark {
  /** Docker timestamp (RFC3339Nano) of the stream's last stored message. */
  ts: string;
  /** How many stored messages of the stream carry exactly that timestamp (all parts of a long line share one). */
  count: number;
}

export type LogMarks = Partial<Record<LogStream, LogMark>>;

export interface LogEntry {
  stream: LogStream;
  data: string;
}
