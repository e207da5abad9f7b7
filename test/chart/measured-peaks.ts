// Peak RSS of each service under its 4x overload run, with the chart's
// NODE_OPTIONS (heap at heapLimitPercent of the memory limit), in MiB: the
// figures `npm run bench` prints. Every memory limit of the chart must be at
// least 1.25x its service's peak (test/chart/footprint.test.ts). Update these
// from a benchmark run on a quiet machine, never by hand-rounding down.
// PLACEHOLDERS until the next benchmark run: play 134, the others 130.
export const measuredPeakMiB = {
  play: 134,
  metadata: 130,
  cdnurl: 130,
  reporting: 130,
  'queue-listener': 130,
} as const;

/** A memory limit must hold the measured peak with this much headroom. */
export const memoryHeadroom = 1.25;
