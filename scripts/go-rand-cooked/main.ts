/**
 * Prints GO_RNG_COOKED (internal/simulate/go-rand-cooked.ts): the state of
 * Go's math/rand generator after 7.8e12 steps from its seed-1 fill, as Go's
 * gen_cooked.go defines it, reached by jumping the recurrence ahead instead
 * of stepping it: `node dist/scripts/go-rand-cooked/main.js` (about a minute).
 */
const LEN = 607;
const TAP = 273;
const STEPS = 7_800_000_000_000n;
const mod64 = (x: bigint): bigint => BigInt.asUintN(64, x);

function seedrand(x: number): number {
  const next = 48271 * (x % 44488) - 3399 * Math.trunc(x / 44488);
  return next < 0 ? next + 2 ** 31 - 1 : next;
}

/** gen_cooked.go's srand(1): the fill the 7.8e12 steps start from. */
function seedFill(): bigint[] {
  const vec: bigint[] = [];
  let x = 1;
  for (let i = -20; i < LEN; i++) {
    x = seedrand(x);
    if (i >= 0) {
      let u = BigInt(x) << 20n;
      x = seedrand(x);
      u ^= BigInt(x) << 10n;
      x = seedrand(x);
      vec.push(u ^ BigInt(x));
    }
  }
  return vec;
}

/** a × b mod (x^607 − x^334 − 1), coefficients mod 2^64: the recurrence x[n] = x[n−273] + x[n−607]. */
function mulmod(a: readonly bigint[], b: readonly bigint[]): bigint[] {
  const t = new Array<bigint>(2 * LEN - 1).fill(0n);
  for (let i = 0; i < LEN; i++) {
    if (a[i] === 0n) continue;
    for (let j = 0; j < LEN; j++) t[i + j] = mod64(t[i + j] + a[i] * b[j]);
  }
  for (let d = 2 * LEN - 2; d >= LEN; d--) {
    t[d - LEN + LEN - TAP] = mod64(t[d - LEN + LEN - TAP] + t[d]);
    t[d - LEN] = mod64(t[d - LEN] + t[d]);
  }
  return t.slice(0, LEN);
}

const init = seedFill();
// The sequence s: s[k] for k ≤ 0 is the initial vec[(334 − k) mod 607]; t[i] = s[i − 606].
const t: bigint[] = [];
for (let i = 0; i < LEN; i++) t.push(init[(((940 - i) % LEN) + LEN) % LEN]);
for (let i = LEN; i < 2 * LEN; i++) t.push(mod64(t[i - TAP] + t[i - LEN]));
let result: bigint[] = [1n, ...new Array<bigint>(LEN - 1).fill(0n)];
let base: bigint[] = [0n, 1n, ...new Array<bigint>(LEN - 2).fill(0n)];
for (let n = STEPS; n > 0n; n >>= 1n) {
  if (n & 1n) result = mulmod(result, base);
  base = mulmod(base, base);
}
const cooked = new Array<bigint>(LEN);
for (let j = 0; j < LEN; j++) {
  let s = 0n;
  for (let i = 0; i < LEN; i++) s = mod64(s + result[i] * t[i + j]);
  const k = Number(STEPS % BigInt(LEN)) + j - 606;
  cooked[(((LEN - TAP - k) % LEN) + LEN) % LEN] = s;
}
for (let i = 0; i < LEN; i += 6) process.stdout.write(`  ${cooked.slice(i, i + 6).map((v) => v.toString(16).padStart(16, '0')).join(' ')}\n`);
