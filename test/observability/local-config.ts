/**
 * observability/local/prometheus.yml, pointed at a mesh on test ports: the
 * test scrapes with the very file a developer runs, only faster.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { Mesh } from '../../kit/mesh';
import { localPrometheusConfig, repoRoot, rulesFile, sloRulesFile } from './paths';

interface ScrapeConfig {
  job_name: string;
  static_configs: { targets: string[]; labels?: Record<string, string> }[];
  [key: string]: unknown;
}
interface PrometheusConfig {
  global?: Record<string, unknown>;
  rule_files?: string[];
  alerting?: unknown;
  scrape_configs: ScrapeConfig[];
}

/** Base URL of each service by job name, which is the service name. */
export type ServiceUrls = Record<string, string>;

/** A test mesh's services by scrape job name. */
export function meshJobs(urls: Mesh['urls']): ServiceUrls {
  return { play: urls.play, metadata: urls.metadata, cdnurl: urls.cdnurl, reporting: urls.reporting, 'queue-listener': urls.queueListener };
}

export function readLocalConfig(): PrometheusConfig {
  return parseYaml(readFileSync(localPrometheusConfig(), 'utf8')) as PrometheusConfig;
}

export interface LocalConfigOptions {
  /** Scrape and rule evaluation interval. */
  interval?: string;
  /** Instead of the chart's rules (the scenario test loads them time-compressed). */
  ruleFiles?: readonly string[];
  /** host:port of the Alertmanagers to send to; none unless given. */
  alertmanagers?: readonly string[];
}

/** The local config pointed at test ports. */
export function localConfigFor(
  urls: ServiceUrls,
  { interval = '1s', ruleFiles = [rulesFile(), sloRulesFile()], alertmanagers = [] }: LocalConfigOptions = {},
): string {
  const config = readLocalConfig();
  const jobs = config.scrape_configs.map((job) => {
    const url = urls[job.job_name];
    if (url === undefined) throw new Error(`no running service for scrape job ${job.job_name}`);
    const host = new URL(url).host;
    return { ...job, static_configs: job.static_configs.map((group) => ({ ...group, targets: [host] })) };
  });
  const { alerting: _local, ...rest } = config;
  return stringifyYaml({
    ...rest,
    ...(alertmanagers.length > 0 ? { alerting: { alertmanagers: [{ static_configs: [{ targets: [...alertmanagers] }] }] } } : {}),
    global: { ...config.global, scrape_interval: interval, evaluation_interval: interval },
    rule_files: [...ruleFiles],
    scrape_configs: jobs,
  });
}

/** The feature flags scripts/observability.sh starts Prometheus with (exemplar-storage): tests run it the same way. */
export function localPrometheusFeatures(): string[] {
  const script = readFileSync(join(repoRoot(), 'scripts/observability.sh'), 'utf8');
  return [...script.matchAll(/--enable-feature=([\w,-]+)/g)].flatMap((match) => (match[1] ?? '').split(','));
}
