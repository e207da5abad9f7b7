import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The repository root, found from this file whether it runs as TypeScript or
 * compiled under dist/, so tests read the chart's files where they live.
 */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'charts'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no repository root (package.json next to charts/) above ${__dirname}`);
    dir = parent;
  }
}

export const rulesFile = (): string => join(repoRoot(), 'charts/video-mesh/rules/video-mesh.rules.yml');
export const rulesTestFile = (): string => join(repoRoot(), 'charts/video-mesh/rules/video-mesh.rules.test.yml');
export const dashboardsDir = (): string => join(repoRoot(), 'charts/video-mesh/dashboards');
export const localPrometheusConfig = (): string => join(repoRoot(), 'observability/local/prometheus.yml');
export const sloSpecFile = (): string => join(repoRoot(), 'charts/video-mesh/rules/video-mesh.slos.yml');
export const sloRulesFile = (): string => join(repoRoot(), 'charts/video-mesh/rules/video-mesh.slos.rules.yml');
export const runbooksFile = (): string => join(repoRoot(), 'docs/runbooks.md');
