// Peak RSS (VmHWM) of each service under four times the load it answers
// saturated, with the chart's NODE_OPTIONS (heap at heapLimitPercent of the
// memory limit, 8 MiB semi-spaces), in MiB: the figures `npm run bench` prints
// in its "peak RSS" table. Every memory limit of the chart must be at least
// 1.25x its service's peak (test/chart/footprint.test.ts). Taken as the higher
// of two runs on 2026-12-01 on our 2-core machine (the second under load from
// other work); update them from a benchmark run, never by rounding down.
export const measuredPeakMiB = {
  play: 158,
  metadata: 136,
  cdnurl: 152,
  reporting: 141,
  'queue-listener': 132,
} as const;

/** A memory limit must hold the measured peak with this much headroom. */
export const memoryHeadroom = 1.25;
