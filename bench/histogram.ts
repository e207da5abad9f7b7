import type { HistogramSample } from '../kit/metrics';

/**
 * The q-quantile (0..1) as Prometheus' histogram_quantile computes it: linear
 * interpolation inside the bucket that holds the rank, the lowest bucket
 * starting at 0, and the highest finite bound when the rank falls in +Inf.
 */
export function histogramQuantile(h: HistogramSample, q: number): number {
  const bucket = bucketOf(h, q);
  if (!bucket) return Number.NaN;
  const { lower, upper, below, count, rank } = bucket;
  if (upper === Number.POSITIVE_INFINITY) return lower;
  return count === below ? upper : lower + ((upper - lower) * (rank - below)) / (count - below);
}

/** The bucket holding the q-quantile's rank: its bounds, and the cumulative counts below and at its top. */
export function bucketOf(h: HistogramSample, q: number): { lower: number; upper: number; below: number; count: number; rank: number } | undefined {
  const total = h.buckets.at(-1)?.count ?? 0;
  if (total === 0) return undefined;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const { le, count } of h.buckets) {
    if (count >= rank) return { lower, upper: le, below, count, rank };
    lower = le;
    below = count;
  }
  return undefined;
}
