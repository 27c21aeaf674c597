export type LogStream = 'stdout' | 'stderr';

/** One batch of output, stored as one etcd key. Entries keep the order the job wrote them. */
export interface LogChunk {
  seq: number;
  entries: LogEntry[];
  /**
   * Container output only: per stream, how many bytes of the container's
   * output (UTF-8 of the stored text) are stored up to and including this
   * chunk. A worker that re-attaches to the container replays Docker's log
   * and skips that much of each stream: per stream, because Docker keeps each
   * stream in order but not the two against each other.
   */
  offsets?: LogOffsets;
}

/** Per stream, bytes of output stored so far. */
export type LogOffsets = Partial<Record<LogStream, number>>;

export interface LogEntry {
  stream: LogStream;
  data: string;
}
