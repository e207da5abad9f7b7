/**
 * The one percentile of the tests, scripts/ and bench/: nearest rank, the smallest value
 * with at least p % of the values at or below it (of 1..10, p50 is 5 and p95
 * is 10). Always a value that was measured, never one interpolated between
 * two. (bench/histogram.ts estimates quantiles from Prometheus bucket counts,
 * as histogram_quantile does, where the values themselves are gone.)
 *
 * Returns undefined when there are no values; `values` need not be sorted and
 * are left as they are.
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is not within 0..100`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p * sorted.length) / 100));
  return sorted[rank - 1];
}
