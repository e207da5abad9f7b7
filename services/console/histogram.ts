/** Cumulative buckets of one Prometheus histogram: `count` observations were at most `le`. */
export interface Buckets {
  le: number;
  count: number;
}

/**
 * The q-quantile of what a histogram counted between two scrapes, read as
 * Prometheus's histogram_quantile reads it: linear within the bucket it
 * falls in, the highest finite bound when it falls in +Inf. Undefined when
 * nothing was counted.
 */
export function quantileOfIncrease(q: number, before: readonly Buckets[], after: readonly Buckets[]): number | undefined {
  const earlier = new Map(before.map((b) => [b.le, b.count]));
  const increase = after.map((b) => ({ le: b.le, count: Math.max(0, b.count - (earlier.get(b.le) ?? 0)) })).sort((a, b) => a.le - b.le);
  const total = increase.at(-1)?.count ?? 0;
  if (total === 0) return undefined;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const bucket of increase) {
    if (bucket.count >= rank) {
      if (bucket.le === Infinity) return lower;
      const inBucket = bucket.count - below;
      return inBucket === 0 ? bucket.le : lower + ((bucket.le - lower) * (rank - below)) / inBucket;
    }
    lower = bucket.le;
    below = bucket.count;
  }
  return lower;
}
