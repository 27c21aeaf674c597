/**
 * Pure formatting helpers for human output: ages, resource amounts and
 * borderless, kubectl-style tables. No I/O here, so all of it is unit-tested.
 */

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** An elapsed time the way kubectl shows ages: 5s, 3m, 2h, 4d. Negative (clock skew) is 0s. */
export function formatAge(elapsedMs: number): string {
  const ms = Number.isFinite(elapsedMs) ? Math.max(0, elapsedMs) : 0;
  if (ms < MINUTE) return `${Math.floor(ms / SECOND)}s`;
  if (ms < HOUR) return `${Math.floor(ms / MINUTE)}m`;
  if (ms < DAY) return `${Math.floor(ms / HOUR)}h`;
  return `${Math.floor(ms / DAY)}d`;
}

/** The age of something created at `since` (epoch ms), or "-" when unknown. */
export function ageSince(since: number | undefined, now: number): string {
  return since === undefined || since <= 0 ? '-' : formatAge(now - since);
}

/** A duration for summaries: 850ms, 4.2s, 3m12s, 1h05m. */
export function formatDuration(ms: number): string {
  const v = Math.max(0, ms);
  if (v < SECOND) return `${Math.round(v)}ms`;
  if (v < MINUTE) return `${trimNumber(v / SECOND, 1)}s`;
  if (v < HOUR) return `${Math.floor(v / MINUTE)}m${String(Math.floor((v % MINUTE) / SECOND)).padStart(2, '0')}s`;
  return `${Math.floor(v / HOUR)}h${String(Math.floor((v % HOUR) / MINUTE)).padStart(2, '0')}m`;
}

/** At most `digits` decimals, without trailing zeros: 0.5, 2, 1.25. */
export function trimNumber(value: number, digits: number): string {
  const fixed = value.toFixed(digits);
  return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
}

/** Millicores as cores: 500 → "0.5", 2000 → "2", 1250 → "1.25". */
export function formatCpu(milli: number): string {
  return trimNumber(milli / 1000, 3);
}

const BINARY_UNITS: readonly [string, number][] = [
  ['Ti', 2 ** 40],
  ['Gi', 2 ** 30],
  ['Mi', 2 ** 20],
  ['Ki', 2 ** 10],
];

/** Bytes in binary units with at most one decimal: 536870912 → "512Mi", 8160437862 → "7.6Gi". */
export function formatMemory(bytes: number): string {
  if (bytes === 0) return '0';
  for (const [unit, size] of BINARY_UNITS) {
    if (Math.abs(bytes) >= size) return `${trimNumber(bytes / size, 1)}${unit}`;
  }
  return `${bytes}B`;
}

/** "k=v,k2=v2" in key order, or "-" when empty. */
export function formatKeyValues(record: Record<string, string> | undefined): string {
  const entries = Object.entries(record ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

/** A timestamp for detail views: "2024-05-01T12:00:00.000Z (3m ago)", or "-". */
export function formatTimestamp(at: number | undefined, now: number): string {
  if (at === undefined || at <= 0) return '-';
  return `${new Date(at).toISOString()} (${formatAge(now - at)} ago)`;
}

/** A command line for display, quoting arguments that need it. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * A borderless table like kubectl's: a header row, columns left-aligned and
 * separated by three spaces, no trailing whitespace. Empty cells show "-".
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const cells = [headers, ...rows].map((row) => headers.map((_, i) => sanitizeCell(row[i])));
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  const lines = cells.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i])))
      .join('   ')
      .trimEnd(),
  );
  return lines.join('\n') + '\n';
}

function sanitizeCell(value: string | undefined): string {
  if (value === undefined || value === '') return '-';
  return value.replace(/[\r\n\t]+/g, ' ');
}

/**
 * Key/value lines for a detail view, keys padded to one width:
 *   ID:      abc
 *   State:   Running
 */
export function renderFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(...fields.map(([k]) => k.length)) + 1;
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${v === '' ? '-' : v}`).join('\n') + '\n';
}
