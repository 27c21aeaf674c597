// Dual-feasible functions (Fekete and Schepers; Clautiaux et al.) turn one
// bin-packing capacity row into stronger valid rows: f maps item sizes so
// that any items fitting in one bin (Σ a ≤ C) still satisfy Σ f(a) ≤ C.
// Summed over bins, Σ f(a)·x ≤ C × bins holds for every packing, so adding
// these rows keeps a relaxation an upper bound while it stops, say, two 810
// milli-GPU shares from counting as one GPU and a third.

/** A valid row: Σ coefficient(size)·x ≤ scale × capacity × bins. Integral coefficients. */
export interface DffRow {
  /** What the row is, for names in a model. */
  name: string;
  /** The multiple of capacity the bins hold on the right-hand side. */
  scale: number;
  coefficient: (size: number) => number;
}

/** The largest sizes checked as thresholds of U^ε: one row per distinct size above half a bin. */
const MAX_EPSILON_ROWS = 12;
/** u^(k) for k = 1 .. this. */
const MAX_K = 6;

/**
 * Rows for items of these sizes in bins of `capacity` (both integers,
 * sizes ≤ capacity), beyond the plain Σ a·x ≤ C row:
 * - U^ε: an item above C − ε counts as a whole bin, one below ε as nothing
 *   (1 ≤ ε ≤ C/2); ε = C − a + 1 for each size a above C/2, so each large
 *   size in turn is the one that fills a bin alone.
 * - u^(k), scaled by k: (k+1)a/C whole → k·a, else ⌊(k+1)a/C⌋·C; so for
 *   k = 1 an item above half a bin counts as a bin, one below as nothing.
 * Rows whose coefficients equal the sizes (nothing gained) are left out, and
 * each distinct row appears once.
 */
export function dffRows(sizes: readonly number[], capacity: number): DffRow[] {
  const distinct = [...new Set(sizes)].filter((a) => a > 0 && a <= capacity).sort((a, b) => a - b);
  const rows: DffRow[] = [];
  const seen = new Set<string>();
  const add = (row: DffRow): void => {
    const values = distinct.map(row.coefficient);
    if (values.every((v, i) => v === distinct[i] * row.scale)) return;
    const key = `${row.scale}:${values.join(',')}`;
    if (seen.has(key)) return;
    seen.add(key);
    rows.push(row);
  };
  const large = distinct.filter((a) => 2 * a > capacity).slice(0, MAX_EPSILON_ROWS);
  for (const a of large) {
    const epsilon = capacity - a + 1;
    add({
      name: `u_eps${epsilon}`,
      scale: 1,
      coefficient: (size) => (size > capacity - epsilon ? capacity : size < epsilon ? 0 : size),
    });
  }
  for (let k = 1; k <= MAX_K; k++) {
    add({
      name: `u_k${k}`,
      scale: k,
      coefficient: (size) => (((k + 1) * size) % capacity === 0 ? k * size : Math.floor(((k + 1) * size) / capacity) * capacity),
    });
  }
  return rows;
}
