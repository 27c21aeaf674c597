/**
 * Docker log timestamps (RFC3339 with up to nanoseconds, e.g.
 * `2025-01-02T03:04:05.123456789Z`). A JavaScript Date keeps milliseconds
 * only, so times are compared as whole seconds plus nanoseconds: two log
 * lines in the same millisecond must still be told apart when a re-attached
 * worker resumes exactly after the last stored one.
 */
export interface DockerTime {
  /** Whole seconds since the epoch. */
  seconds: number;
  nanos: number;
}

const PATTERN = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

export function parseDockerTime(text: string): DockerTime | undefined {
  const match = PATTERN.exec(text);
  if (!match) return undefined;
  const ms = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return { seconds: ms / 1000, nanos: Number((match[2] ?? '').padEnd(9, '0')) };
}

/** Negative, zero or positive like a sort comparator; unparsable text compares as plain strings. */
export function compareDockerTime(a: string, b: string): number {
  const x = parseDockerTime(a);
  const y = parseDockerTime(b);
  if (!x || !y) return a < b ? -1 : a > b ? 1 : 0;
  return x.seconds - y.seconds || x.nanos - y.nanos;
}

/**
 * The `since` (whole seconds) to ask Docker for when resuming after these
 * marks: a second before the earliest, because a stream with nothing stored
 * yet may hold a message a few scheduler ticks older than the other stream's
 * last stored one. What comes back twice is dropped by the marks.
 */
export function sinceSeconds(marks: readonly string[]): number | undefined {
  const times = marks.map(parseDockerTime).filter((t): t is DockerTime => t !== undefined);
  if (times.length === 0) return undefined;
  return Math.max(0, Math.floor(Math.min(...times.map((t) => t.seconds))) - 1);
}
