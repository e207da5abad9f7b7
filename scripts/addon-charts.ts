/**
 * The upstream charts video-mesh installs beside itself (k8s/up.sh) or
 * documents for production (docs/kubernetes.md), at the versions the chart
 * tests render with the values files of k8s/addons: where `helm pull` finds
 * each, and the SHA-256 of the archive the tests were written against.
 * `npm run charts:fetch` pulls them into .cache/addon-charts and refuses an
 * archive whose digest differs; the chart tests render from there when
 * ADDON_CHARTS_DIR is not set.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './helm-binary';

export type AddonChart = 'traefik' | 'kube-prometheus-stack' | 'tempo' | 'nats' | 'consul' | 'cloudnative-pg' | 'cluster';

/** A chart repository as `helm repo add <name> <url>` names it in k8s/up.sh and docs/kubernetes.md. */
export interface ChartRepository {
  name: string;
  url: string;
}

export interface PublishedChart {
  chart: AddonChart;
  version: string;
  repository: ChartRepository;
  /** Of the `<chart>-<version>.tgz` the tests were written against. */
  sha256: string;
}

/** A chart the tests render that no chart repository serves: only ADDON_CHARTS_DIR can hold it. */
export interface UnpublishedChart {
  chart: AddonChart;
  version: string;
  /** Why it cannot be pulled, for the line that says its tests were skipped. */
  unpublished: string;
}

export type AddonChartPin = PublishedChart | UnpublishedChart;

const traefik: ChartRepository = { name: 'traefik', url: 'https://traefik.github.io/charts' };
const prometheusCommunity: ChartRepository = { name: 'prometheus-community', url: 'https://prometheus-community.github.io/helm-charts' };
const grafanaCommunity: ChartRepository = { name: 'grafana-community', url: 'https://grafana-community.github.io/helm-charts' };
const nats: ChartRepository = { name: 'nats', url: 'https://nats-io.github.io/k8s/helm/charts/' };
const cnpg: ChartRepository = { name: 'cnpg', url: 'https://cloudnative-pg.github.io/charts' };

export const ADDON_CHARTS: readonly AddonChartPin[] = [
  { chart: 'traefik', version: '41.3.0', repository: traefik, sha256: '9ca1add04a3d3c6a8aaeaf28ab6d49a04b57f124e1e94c93ba51e0b052eaad00' },
  {
    chart: 'kube-prometheus-stack',
    version: '88.5.3',
    repository: prometheusCommunity,
    sha256: '55f9a528789a57bd7d863a83f88d88d2e527af50563153161711c04d3f81e6bf',
  },
  { chart: 'tempo', version: '2.2.4', repository: grafanaCommunity, sha256: 'cd8f967a5b4388f3289b0dfd1789dbdfde42ca44a6fbc9a46681534ae97a041c' },
  { chart: 'nats', version: '2.14.2', repository: nats, sha256: '54ccefb52b2c36263bda6498ce1d9d3627c459678f19d07242f22de44173404c' },
  { chart: 'cloudnative-pg', version: '0.29.0', repository: cnpg, sha256: 'd79fcbf6f62c9cb505047143aa8522580a1dd1e436328055c8953ef2da7af486' },
  { chart: 'cluster', version: '0.8.1', repository: cnpg, sha256: '388805e04f63fef22b5eff4adb35b56bfac281968225ac4b41b60c753acf0b1b' },
  {
    chart: 'consul',
    version: '2.1.0-dev',
    // docs/kubernetes.md installs the 2.0.x release line from HashiCorp's repository; the tests render main, ahead of it.
    unpublished: 'consul 2.1.0-dev is consul-k8s main, in no chart repository: only ADDON_CHARTS_DIR can hold it',
  },
];

export const isPublished = (pin: AddonChartPin): pin is PublishedChart => 'repository' in pin;

export function pinOf(chart: AddonChart): AddonChartPin {
  const pin = ADDON_CHARTS.find((p) => p.chart === chart);
  if (!pin) throw new Error(`no pin for the add-on chart ${chart}`);
  return pin;
}

/** The archive's file name, as `helm pull` and `helm package` write it. */
export const archiveName = (pin: { chart: AddonChart; version: string }): string => `${pin.chart}-${pin.version}.tgz`;

/** Where `npm run charts:fetch` puts the archives, and the chart tests look for them. */
export const FETCHED_CHARTS_DIR = join(REPO_ROOT, '.cache', 'addon-charts');

export function sha256Of(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}
