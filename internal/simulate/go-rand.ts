import { GO_RNG_COOKED } from './go-rand-cooked.js';

const LEN = 607;
const TAP = 273;
const INT32_MAX = 2 ** 31 - 1;
const MASK63 = (1n << 63n) - 1n;

/** Go's seeding generator: x' = 48271 x mod (2^31 - 1), by Schrage's method as Go computes it. */
function seedrand(x: number): number {
  const hi = Math.trunc(x / 44488);
  const lo = x % 44488;
  const next = 48271 * lo - 3399 * hi;
  return next < 0 ? next + INT32_MAX : next;
}

/**
 * Go's math/rand (its rngSource and the Rand methods the FGD artefact calls):
 * the same seed gives the same draws as `rand.Seed(seed)` in Go, so a
 * simulation can shuffle a trace exactly as the artefact's runs did.
 */
export class GoRand {
  private readonly vec = new BigUint64Array(LEN);
  private tap = 0;
  private feed = LEN - TAP;

  constructor(seed: number) {
    let s = seed % INT32_MAX;
    if (s < 0) s += INT32_MAX;
    if (s === 0) s = 89482311;
    let x = s;
    for (let i = -20; i < LEN; i++) {
      x = seedrand(x);
      if (i >= 0) {
        let u = BigInt.asUintN(64, BigInt(x) << 40n);
        x = seedrand(x);
        u ^= BigInt(x) << 20n;
        x = seedrand(x);
        u ^= BigInt(x);
        this.vec[i] = u ^ GO_RNG_COOKED[i];
      }
    }
  }

  uint64(): bigint {
    if (--this.tap < 0) this.tap += LEN;
    if (--this.feed < 0) this.feed += LEN;
    this.vec[this.feed] += this.vec[this.tap]; // BigUint64Array wraps mod 2^64
    return this.vec[this.feed];
  }

  int63(): bigint {
    return this.uint64() & MASK63;
  }

  int31(): number {
    return Number(this.int63() >> 32n);
  }

  uint32(): number {
    return Number(this.int63() >> 31n);
  }

  /** Go's Int31n: rejection sampling below the largest multiple of n. */
  int31n(n: number): number {
    if (n <= 0 || n > INT32_MAX) throw new RangeError(`int31n: ${n} out of range`);
    if ((n & (n - 1)) === 0) return this.int31() & (n - 1);
    const max = INT32_MAX - (2 ** 31 % n);
    let v = this.int31();
    while (v > max) v = this.int31();
    return v % n;
  }

  /** Go's Intn for n < 2^31 (all a trace needs). */
  intn(n: number): number {
    return this.int31n(n);
  }

  /** Go's unexported int31n (Lemire's multiply-shift), used by Shuffle. */
  private int31nFast(n: number): number {
    const bn = BigInt(n);
    let prod = BigInt(this.uint32()) * bn;
    let low = Number(prod & 0xffffffffn);
    if (low < n) {
      const thresh = (2 ** 32 - n) % n;
      while (low < thresh) {
        prod = BigInt(this.uint32()) * bn;
        low = Number(prod & 0xffffffffn);
      }
    }
    return Number(prod >> 32n);
  }

  /** Go's Shuffle: Fisher-Yates from the end. */
  shuffle(n: number, swap: (i: number, j: number) => void): void {
    for (let i = n - 1; i > 0; i--) swap(i, this.int31nFast(i + 1));
  }

  /** Go's Perm: a permutation of 0..n-1, built inside out. */
  perm(n: number): number[] {
    const m = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) {
      const j = this.intn(i + 1);
      m[i] = m[j];
      m[j] = i;
    }
    return m;
  }
}
