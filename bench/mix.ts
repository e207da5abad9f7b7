/**
 * Which asset and user a play of the realistic mix is about: drawn Zipf-like
 * (the k-th most popular is played 1/k as often as the first) over `assets`
 * and `users`, from a seeded generator so every run plays the same sequence.
 */
export function zipfMix(options: { assets: number; users: number; seed?: number }): (i: number) => { asset: number; user: number } {
  const cdf = (n: number) => {
    const weights = Array.from({ length: n }, (_, k) => 1 / (k + 1));
    const total = weights.reduce((a, b) => a + b, 0);
    let sum = 0;
    return weights.map((w) => (sum += w / total));
  };
  const assetCdf = cdf(options.assets);
  const userCdf = cdf(options.users);
  let state = options.seed ?? 1;
  // mulberry32: small, fast, good enough to spread plays.
  const random = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = (sorted: number[]) => {
    const r = random();
    let lo = 0;
    let hi = sorted.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((sorted[mid] ?? 1) < r) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return () => ({ asset: pick(assetCdf), user: pick(userCdf) });
}
