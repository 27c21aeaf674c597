// The FGD artefact's figure "GPU allocated % at x% arrived", computed as its
// analysis scripts compute it (pandas over one log line per task), so a run
// here and a published figure differ only where the placements do. The
// rounding helpers mirror Python's and numpy's, which differ on halves.

/** Python's round(x, digits) on a float: half to even on the float's exact decimal value. */
export function pythonRound(x: number, digits: number): number {
  const scale = 10 ** digits;
  const scaled = x * scale;
  const frac = Math.abs(scaled - Math.trunc(scaled));
  if (Math.abs(frac - 0.5) > 1e-6 || !Number.isFinite(x)) return Math.round(scaled) / scale;
  // Near a half: decide on the exact decimal expansion of x.
  const [whole, decimals = ''] = Math.abs(x).toPrecision(100).split('.');
  const kept = BigInt(whole + decimals.slice(0, digits).padEnd(digits, '0'));
  const rest = decimals.slice(digits).replace(/0+$/, '');
  const up = rest > '5' || (rest === '5' && kept % 2n === 1n);
  const rounded = Number(up ? kept + 1n : kept) / scale;
  return x < 0 ? -rounded : rounded;
}

/** numpy's round(x, digits): scale, round half to even, unscale. */
export function numpyRound(x: number, digits: number): number {
  const scale = 10 ** digits;
  const scaled = x * scale;
  const floor = Math.floor(scaled);
  const diff = scaled - floor;
  const even = diff === 0.5 ? (floor % 2 === 0 ? floor : floor + 1) : Math.round(scaled);
  return even / scale;
}

/** numpy's pairwise float sum (blocks of 128, eight accumulators). */
export function numpySum(values: readonly number[], start = 0, n = values.length): number {
  if (n < 8) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[start + i];
    return sum;
  }
  if (n <= 128) {
    const r = values.slice(start, start + 8);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += values[start + i + j];
    let sum = r[0] + r[1] + (r[2] + r[3]) + (r[4] + r[5] + (r[6] + r[7]));
    for (; i < n; i++) sum += values[start + i];
    return sum;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return numpySum(values, start, half) + numpySum(values, start + half, n - half);
}

/** One log line: arrived and allocated GPU, in milli-GPU, after a task was tried. */
export interface AllocSample {
  arrivedMilli: number;
  allocatedMilli: number;
}

/**
 * GPU allocated, in % of the cluster's `gpus`, when arrivals reach `percent`
 * of them: the mean over the lines whose arrived share rounds to `percent`
 * (else to within one point of it) of their allocated share rounded to two
 * decimals; undefined when no line is that close.
 */
export function allocatedAt(samples: readonly AllocSample[], gpus: number, percent: number): number | undefined {
  const arrived = samples.map((s) => pythonRound(s.arrivedMilli / gpus / 10, 0));
  let rows = samples.filter((_, i) => arrived[i] === percent);
  if (rows.length === 0) rows = samples.filter((_, i) => arrived[i] >= percent - 1 && arrived[i] <= percent + 1);
  if (rows.length === 0) return undefined;
  const allocated = rows.map((s) => pythonRound(s.allocatedMilli / gpus / 10, 2));
  return numpyRound(numpySum(allocated) / allocated.length, 2);
}
