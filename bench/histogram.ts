/** One Prometheus histogram series read from /metrics text: cumulative buckets, count and sum. */
export interface HistogramSample {
  buckets: Array<{ le: number; count: number }>;
  count: number;
  sum: number;
}

const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

function labelsOf(line: string): Record<string, string> {
  const open = line.indexOf('{');
  const close = line.lastIndexOf('}');
  if (open < 0 || close < open) return {};
  return Object.fromEntries([...line.slice(open + 1, close).matchAll(LABEL)].map((m) => [m[1]!, m[2]!]));
}

/**
 * The series of histogram `name` whose labels include `labels`, summed over
 * any other labels. Returns undefined when no such series was exported.
 */
export function readHistogram(text: string, name: string, labels: Record<string, string> = {}): HistogramSample | undefined {
  const byLe = new Map<number, number>();
  let count = 0;
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    const suffix = ['_bucket', '_count', '_sum'].find((s) => line.startsWith(`${name}${s}{`) || line.startsWith(`${name}${s} `));
    if (!suffix) continue;
    const own = labelsOf(line);
    if (!Object.entries(labels).every(([k, v]) => own[k] === v)) continue;
    found = true;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (suffix === '_count') count += value;
    else if (suffix === '_sum') sum += value;
    else {
      const le = own['le'] === '+Inf' ? Number.POSITIVE_INFINITY : Number(own['le']);
      byLe.set(le, (byLe.get(le) ?? 0) + value);
    }
  }
  if (!found) return undefined;
  const buckets = [...byLe].map(([le, n]) => ({ le, count: n })).sort((a, b) => a.le - b.le);
  return { buckets, count, sum };
}

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
