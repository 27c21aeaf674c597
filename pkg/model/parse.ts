import { invalidInput } from './errors.js';

/** `500m` → 500, `0.5` → 500, `2` → 2000 (millicores). */
export function parseCpu(input: string | number, field = 'cpu'): number {
  const text = String(input).trim();
  const match = /^(\d+(?:\.\d+)?)(m?)$/.exec(text);
  if (!match) throw invalidInput(field, `"${text}" is not a CPU amount (use 500m, 0.5 or 2)`);
  const value = Number(match[1]);
  const milli = match[2] === 'm' ? value : value * 1000;
  if (!Number.isInteger(milli)) throw invalidInput(field, `"${text}" is finer than one millicore`);
  if (milli <= 0) throw invalidInput(field, 'must be more than zero');
  return milli;
}

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  K: 1e3,
  KB: 1e3,
  M: 1e6,
  MB: 1e6,
  G: 1e9,
  GB: 1e9,
  T: 1e12,
  TB: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** `512Mi`, `2Gi`, `1G`, `1048576` → bytes. */
export function parseMemory(input: string | number, field = 'memory'): number {
  const text = String(input).trim();
  const match = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(text);
  const unit = match ? MEMORY_UNITS[match[2]] : undefined;
  if (!match || unit === undefined) {
    throw invalidInput(field, `"${text}" is not a memory size (use 512Mi, 2Gi, 1G or bytes)`);
  }
  const bytes = Math.round(Number(match[1]) * unit);
  if (bytes <= 0) throw invalidInput(field, 'must be more than zero');
  return bytes;
}

/**
 * GPUs → milli-GPU: `0.25` → 250 (a share of one device), `2` → 2000 (two
 * whole devices). Fractions exist only below one GPU: devices are not split
 * across a multi-GPU job.
 */
export function parseGpu(input: string | number, field = 'gpu'): number {
  const text = String(input).trim();
  if (!/^\d+(\.\d+)?$/.test(text)) throw invalidInput(field, `"${text}" is not a number of GPUs (use 0.25, 1 or 2)`);
  const milli = Math.round(Number(text) * 1000);
  if (Math.abs(milli - Number(text) * 1000) > 1e-6) throw invalidInput(field, `"${text}" is finer than 1/1000 of a GPU`);
  if (milli > 1000 && milli % 1000 !== 0) {
    throw invalidInput(field, `"${text}": a job may share one GPU (below 1) or take whole GPUs, not ${text}`);
  }
  return milli;
}

export function parseInteger(input: string | number, field: string): number {
  const text = String(input).trim();
  if (!/^-?\d+$/.test(text)) throw invalidInput(field, `"${text}" is not a whole number`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw invalidInput(field, `"${text}" is out of range`);
  return value;
}

export function parsePositiveInteger(input: string | number, field: string): number {
  const value = parseInteger(input, field);
  if (value <= 0) throw invalidInput(field, 'must be more than zero');
  return value;
}

export function parseNonNegativeInteger(input: string | number, field: string): number {
  const value = parseInteger(input, field);
  if (value < 0) throw invalidInput(field, 'must be zero or more');
  return value;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30s`, `5m`, `1h30m`, `250ms`, or a bare number of seconds → milliseconds. */
export function parseDuration(input: string | number, field = 'duration'): number {
  const text = String(input).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
  let total = 0;
  let consumed = 0;
  for (let m = part.exec(text); m; m = part.exec(text)) {
    if (m.index !== consumed) break;
    total += Number(m[1]) * (DURATION_UNITS[m[2]] ?? 0);
    consumed = m.index + m[0].length;
  }
  if (consumed !== text.length || text.length === 0) {
    throw invalidInput(field, `"${text}" is not a duration (use 30s, 5m, 1h30m)`);
  }
  return Math.round(total);
}

/** `KEY=VALUE` pairs (from `--env` or `--label`) → a record. */
export function parseKeyValues(pairs: readonly string[], field: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalidInput(field, `"${pair}" is not KEY=VALUE`);
    const key = pair.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_.\-/]*$/.test(key)) throw invalidInput(field, `"${key}" is not a valid key`);
    out[key] = pair.slice(eq + 1);
  }
  return out;
}
