/** Metrics as the tests read them: the platform's parser of Prometheus text, and a scrape. */
export { metricValue, parseSamples, readHistogram, sampleSum, type HistogramSample } from '../services/platform/prometheus-text';

export async function scrape(baseUrl: string): Promise<string> {
  return (await fetch(`${baseUrl}/metrics`)).text();
}
