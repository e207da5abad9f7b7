/**
 * The chart rendered as `skaffold dev` renders it: skaffold.yaml's release
 * (name, namespace, setValues, and setValueTemplates filled with the image
 * the rehearsal built), with Helm 4, plus the few values the rehearsal must
 * change because the official NATS and PostgreSQL images cannot be pulled
 * here: both in the chart's external mode, pointing at servers on the host
 * side of the container network.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { render, repoRoot, type Manifest } from '../chart/helm';
import { parseObject } from './kube';

const skaffoldSchema = z.object({
  build: z.object({ artifacts: z.array(z.object({ image: z.string() })) }),
  deploy: z.object({
    helm: z.object({
      releases: z.array(
        z.object({
          name: z.string(),
          chartPath: z.string(),
          namespace: z.string(),
          setValues: z.record(z.union([z.string(), z.number(), z.boolean()])).default({}),
          setValueTemplates: z.record(z.string()).default({}),
        }),
      ),
    }),
    statusCheckDeadlineSeconds: z.number().int().default(600),
  }),
  portForward: z
    .array(
      z.object({ resourceType: z.string(), resourceName: z.string(), namespace: z.string().optional(), port: z.number().int(), localPort: z.number().int() }),
    )
    .default([]),
});

interface PortForward {
  service: string;
  namespace: string | undefined;
  port: number;
  localPort: number;
}

export interface DevRelease {
  name: string;
  namespace: string;
  chartPath: string;
  /** `--set` values of `skaffold dev`, templates filled. */
  values: Record<string, string>;
  /** How long `skaffold dev` waits for the Deployments to be ready. */
  statusCheckDeadlineSeconds: number;
  /** skaffold's port-forwards of Services (localhost:localPort to the Service's port). */
  portForwards: PortForward[];
}

/** skaffold.yaml's first release with its values, the image templates filled as skaffold fills them for a built artifact. */
export function skaffoldDevRelease(image: { repository: string; tag: string }): DevRelease {
  const config = parseObject(skaffoldSchema, parse(readFileSync(join(repoRoot, 'skaffold.yaml'), 'utf8')), 'skaffold.yaml');
  const release = config.deploy.helm.releases[0];
  if (!release) throw new Error('skaffold.yaml has no helm release');
  const templateVars = new Map<string, string>();
  for (const artifact of config.build.artifacts) {
    const key = artifact.image.replace(/[^A-Za-z0-9]/g, '_');
    templateVars.set(`IMAGE_REPO_${key}`, image.repository);
    templateVars.set(`IMAGE_TAG_${key}`, image.tag);
    templateVars.set(`IMAGE_FULLY_QUALIFIED_${key}`, `${image.repository}:${image.tag}`);
  }
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(release.setValues)) values[key] = String(value);
  for (const [key, template] of Object.entries(release.setValueTemplates)) {
    values[key] = template.replace(/\{\{\s*\.([A-Za-z0-9_]+)\s*\}\}/g, (_match, name: string) => {
      const value = templateVars.get(name);
      if (value === undefined) throw new Error(`skaffold.yaml: setValueTemplates ${key} uses {{.${name}}}, which the rehearsal cannot fill`);
      return value;
    });
  }
  return {
    name: release.name,
    namespace: release.namespace,
    chartPath: release.chartPath,
    values,
    statusCheckDeadlineSeconds: config.deploy.statusCheckDeadlineSeconds,
    portForwards: config.portForward
      .filter((f) => f.resourceType === 'service')
      .map((f) => ({ service: f.resourceName, namespace: f.namespace, port: f.port, localPort: f.localPort })),
  };
}

/** The values the rehearsal changes, and why: printed by `npm run rehearse`. */
export interface RehearsalValues {
  natsUrl: string;
  /** The Secret an operator would create with the NATS users' passwords, a key per user (created by the rehearsal itself). */
  natsAuthSecret: string;
  /** The Secret an operator would create with the CA of the NATS servers' certificate, key ca.crt (created by the rehearsal itself). */
  natsCaSecret: string;
  /** The Secret an operator would create for an external PostgreSQL (created by the rehearsal itself). */
  postgresSecret: string;
}

export function rehearsalOverrides(values: RehearsalValues): Record<string, string> {
  return {
    'nats.selfContained': 'false',
    'nats.url': values.natsUrl,
    'nats.auth.existingSecret': values.natsAuthSecret,
    'nats.tls.caSecret': values.natsCaSecret,
    'postgres.selfContained': 'false',
    'postgres.external.existingSecret': values.postgresSecret,
  };
}

export function renderForRehearsal(release: DevRelease, overrides: Record<string, string>): Manifest[] {
  if (release.chartPath !== 'charts/video-mesh') throw new Error(`skaffold.yaml deploys ${release.chartPath}; the rehearsal renders charts/video-mesh`);
  // Helm 4, as skaffold 2.19+ runs it (docs/kubernetes.md's minimum for `skaffold dev`).
  return render(4, { release: release.name, namespace: release.namespace, values: { ...release.values, ...overrides } });
}
