/**
 * Prometheus text, as a service's GET /metrics answers it (the classic text
 * format or OpenMetrics), read into samples: the one parser of the tests, the
 * benchmarks, the scripts (through kit/metrics.ts) and the console.
 */

/** One line of a series: `name{labels} value`, with any timestamp and exemplar left out. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
// One `label="value"` pair and the comma after it; the value may hold escaped quotes, commas and braces.
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/y;
const ESCAPE = /\\(.)/g;

// As Prometheus reads them (Go's ParseFloat): NaN and Inf in any case; prom-client writes `Nan`.
const SPECIAL: Record<string, number> = { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, '+inf': Number.POSITIVE_INFINITY, '-inf': Number.NEGATIVE_INFINITY };

function numberOf(text: string, line: string): number {
  const special = SPECIAL[text.toLowerCase()];
  if (special !== undefined) return special;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new Error(`not a Prometheus sample value: ${line}`);
  return value;
}

function sampleOf(line: string): Sample {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) throw new Error(`not a Prometheus sample: ${line}`);
  let at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === '{') {
    at += 1;
    for (let pair = readLabel(line, at); pair; pair = readLabel(line, at)) {
      labels[pair.name] = pair.value;
      at = pair.end;
    }
    if (line[at] !== '}') throw new Error(`unreadable labels in Prometheus sample: ${line}`);
    at += 1;
  }
  // After the value may come a timestamp and, in OpenMetrics, `# {exemplar labels} value`.
  const [value = ''] = line.slice(at).trim().split(/\s+/, 1);
  return { name, labels, value: numberOf(value, line) };
}

function readLabel(line: string, at: number): { name: string; value: string; end: number } | undefined {
  LABEL.lastIndex = at;
  const match = LABEL.exec(line);
  if (!match) return undefined;
  const value = match[2]!.replace(ESCAPE, (_, c: string) => (c === 'n' ? '\n' : c));
  return { name: match[1]!, value, end: LABEL.lastIndex };
}

/** Every sample of the text, in order; comments (`# HELP`, `# TYPE`, `# EOF`) and blank lines are skipped. */
export function parseSamples(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map(sampleOf);
}

const hasLabels = (sample: Sample, labels: Record<string, string>) => Object.entries(labels).every(([k, v]) => sample.labels[k] === v);

/** The samples of `name` whose labels include `labels` (and may have others). */
function samplesOf(text: string, name: string, labels: Record<string, string> = {}): Sample[] {
  return parseSamples(text).filter((s) => s.name === name && hasLabels(s, labels));
}

/** Sum of the samples of `name` whose labels include `labels`: 0 when there is none. */
export function sampleSum(text: string, name: string, labels: Record<string, string> = {}): number {
  return samplesOf(text, name, labels).reduce((sum, s) => sum + s.value, 0);
}

/**
 * The value of the one series of `name` whose labels include `labels`;
 * undefined when there is none, an error when the labels name several.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samplesOf(text, name, labels);
  if (found.length > 1) throw new Error(`${found.length} series of ${name} have the labels ${JSON.stringify(labels)}: name one`);
  return found[0]?.value;
}

/** One Prometheus histogram series read from /metrics text: cumulative buckets, count and sum. */
export interface HistogramSample {
  buckets: Array<{ le: number; count: number }>;
  count: number;
  sum: number;
}

/**
 * The series of histogram `name` whose labels include `labels`, summed over
 * any other labels. Returns undefined when no such series was exported.
 */
export function readHistogram(text: string, name: string, labels: Record<string, string> = {}): HistogramSample | undefined {
  const samples = parseSamples(text);
  const of = (suffix: string) => samples.filter((s) => s.name === `${name}${suffix}` && hasLabels(s, labels));
  const [bucketSamples, counts, sums] = [of('_bucket'), of('_count'), of('_sum')];
  if (bucketSamples.length + counts.length + sums.length === 0) return undefined;
  const byLe = new Map<number, number>();
  for (const s of bucketSamples) {
    const le = numberOf(s.labels['le'] ?? '', `${name}_bucket le="${s.labels['le']}"`);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  const total = (list: Sample[]) => list.reduce((sum, s) => sum + s.value, 0);
  const buckets = [...byLe].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
  return { buckets, count: total(counts), sum: total(sums) };
}
