import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { localConfigFor, localPrometheusFeatures, readLocalConfig } from './local-config';
import { localPrometheusConfig, repoRoot, rulesFile, sloRulesFile } from './paths';
import { promtool } from './promtool';

/** docs/configuration.md: the default port of each service. */
const defaultPorts: Record<string, number> = { play: 8080, metadata: 8081, reporting: 8082, cdnurl: 8083, 'queue-listener': 8084 };

describe('local observability setup', () => {
  it('when promtool checks the local Prometheus config, then it is valid and loads the chart alert and SLO rules', async () => {
    const result = await promtool(['check', 'config', localPrometheusConfig()]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const config = readLocalConfig();
    assert.deepEqual(
      config.rule_files?.map((file) => resolve(dirname(localPrometheusConfig()), file)),
      [rulesFile(), sloRulesFile()],
    );
  });

  it('when the scrape jobs are read, then each service is scraped on 127.0.0.1 at its default port with namespace local', () => {
    const jobs = readLocalConfig().scrape_configs.map((job) => ({
      job: job.job_name,
      path: job['metrics_path'],
      targets: job.static_configs.flatMap((group) => group.targets),
      labels: job.static_configs.map((group) => group.labels),
    }));
    assert.deepEqual(
      jobs,
      Object.entries(defaultPorts).map(([service, port]) => ({
        job: service,
        path: '/metrics',
        targets: [`127.0.0.1:${port}`],
        labels: [{ namespace: 'local' }],
      })),
    );
  });

  it('when the config is pointed at test ports, then only targets, intervals and the rules path change', () => {
    const urls = Object.fromEntries(Object.keys(defaultPorts).map((service, i) => [service, `http://127.0.0.1:${40000 + i}`]));
    const config = parseYaml(localConfigFor(urls, { interval: '1s' })) as ReturnType<typeof readLocalConfig>;
    assert.equal(config.global?.['scrape_interval'], '1s');
    assert.deepEqual(config.rule_files, [rulesFile(), sloRulesFile()]);
    assert.deepEqual(
      config.scrape_configs.map((job) => job.static_configs[0]?.targets),
      Object.keys(defaultPorts).map((_, i) => [`127.0.0.1:${40000 + i}`]),
    );
    assert.throws(() => localConfigFor({ play: 'http://127.0.0.1:1' }), /no running service for scrape job metadata/);
  });

  it('when Grafana provisioning is read, then it points at the chart dashboards and the local Prometheus', () => {
    const provisioning = join(repoRoot(), 'observability/local/grafana/provisioning');
    const providers = parseYaml(readFileSync(join(provisioning, 'dashboards/video-mesh.yml'), 'utf8')) as {
      providers: { type: string; options: { path: string } }[];
    };
    assert.deepEqual(
      providers.providers.map((provider) => [provider.type, provider.options.path]),
      [['file', '${VIDEO_MESH_DASHBOARDS}']],
    );
    const datasources = parseYaml(readFileSync(join(provisioning, 'datasources/prometheus.yml'), 'utf8')) as {
      datasources: { type: string; url: string }[];
    };
    assert.deepEqual(
      datasources.datasources.map((source) => [source.type, source.url]),
      [
        ['prometheus', '${VIDEO_MESH_PROMETHEUS_URL}'],
        ['tempo', '${VIDEO_MESH_TEMPO_URL}'],
      ],
    );
    const script = readFileSync(join(repoRoot(), 'scripts/observability.sh'), 'utf8');
    assert.match(script, /VIDEO_MESH_DASHBOARDS="\$root\/charts\/video-mesh\/dashboards"/);
    assert.match(script, /VIDEO_MESH_PROMETHEUS_URL="http:\/\/127\.0\.0\.1:\$prometheus_port"/);
    assert.match(script, /VIDEO_MESH_TEMPO_URL="\$tempo_url"/);
  });

  it('when an exemplar is clicked in Grafana, then its trace_id opens the trace in the provisioned Tempo, and Prometheus stores exemplars', () => {
    const provisioning = join(repoRoot(), 'observability/local/grafana/provisioning');
    const { datasources } = parseYaml(readFileSync(join(provisioning, 'datasources/prometheus.yml'), 'utf8')) as {
      datasources: { type: string; uid: string; jsonData?: { exemplarTraceIdDestinations?: { name: string; datasourceUid: string }[] } }[];
    };
    const prometheus = datasources.find((source) => source.type === 'prometheus');
    const tempo = datasources.find((source) => source.type === 'tempo');
    assert.ok(prometheus && tempo);
    assert.deepEqual(
      prometheus.jsonData?.exemplarTraceIdDestinations?.map((destination) => [destination.name, destination.datasourceUid]),
      [['trace_id', tempo.uid]],
    );
    assert.ok(localPrometheusFeatures().includes('exemplar-storage'), 'scripts/observability.sh runs Prometheus with --enable-feature=exemplar-storage');
  });

  it('when scripts/observability.sh --check runs, then the config and the rule tests pass', () => {
    const result = spawnSync('bash', [join(repoRoot(), 'scripts/observability.sh'), '--check'], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });
});
