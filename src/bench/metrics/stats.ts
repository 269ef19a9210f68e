/** Percentiles (nearest rank) and summaries for benchmark metrics. */
export interface Summary {
  readonly n: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentile of an ascending array: the smallest value ≥ p% of the values; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export function summarize(values: readonly number[]): Summary {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const arr = Array.from(sorted);
  return {
    n: arr.length,
    mean: arr.length ? sum / arr.length : NaN,
    p50: percentile(arr, 50),
    p90: percentile(arr, 90),
    p99: percentile(arr, 99),
    max: arr.length ? arr[arr.length - 1] : NaN,
  };
}

/** max / mean of non-negative loads: 1 is perfect balance; NaN when the mean is 0. */
export function imbalance(loads: readonly number[]): number {
  if (loads.length === 0) return NaN;
  const mean = loads.reduce((s, v) => s + v, 0) / loads.length;
  return mean > 0 ? Math.max(...loads) / mean : NaN;
}

/** Points (x, fraction ≤ x) of the empirical CDF, thinned to at most `points` (always keeps the max). */
export function cdfPoints(values: readonly number[], points = 200): [number, number][] {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return [];
  const step = Math.max(1, Math.floor(n / points));
  const out: [number, number][] = [];
  for (let i = step - 1; i < n; i += step) out.push([sorted[i], (i + 1) / n]);
  if (out[out.length - 1][1] !== 1) out.push([sorted[n - 1], 1]);
  return out;
}
