import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readSpec } from '../../scripts/slo';
import { sloSpecFile } from './paths';
import {
  allPanels,
  comparisonOperands,
  dashboardExpressions,
  loadDashboards,
  substitute,
  variableQueryAsPromql,
  variableQueryText,
  type Dashboard,
  type Variable,
} from './promql';

const dashboards = loadDashboards();
const expectedDatasource = { type: 'prometheus', uid: '${datasource}' };

function variable(dashboard: Dashboard, name: string): Variable {
  const found = dashboard.templating?.list?.find((candidate) => candidate.name === name);
  assert.ok(found, `${dashboard.file} has no variable ${name}`);
  return found;
}

describe('Grafana dashboards', () => {
  it('when the chart is read, then it ships the overview and the per-service dashboards', () => {
    assert.deepEqual(
      dashboards.map((dashboard) => dashboard.file),
      ['video-mesh-overview.json', 'video-mesh-service.json'],
    );
    assert.deepEqual(
      dashboards.map((dashboard) => dashboard.uid),
      ['video-mesh-overview', 'video-mesh-service'],
    );
  });

  for (const dashboard of dashboards) {
    describe(dashboard.file, () => {
      it('when loaded, then it has a current schema, a title and a stable uid', () => {
        assert.equal(typeof dashboard.schemaVersion, 'number');
        assert.ok((dashboard.schemaVersion as number) >= 39, `schemaVersion ${String(dashboard.schemaVersion)} < 39`);
        assert.ok(typeof dashboard.title === 'string' && dashboard.title.length > 0);
        assert.match(String(dashboard.uid), /^[a-z0-9-]{1,40}$/);
      });

      it('when its variables are read, then datasource, namespace and service are the ones the brief asks for', () => {
        const datasource = variable(dashboard, 'datasource');
        assert.equal(datasource.type, 'datasource');
        assert.equal(datasource.query, 'prometheus');

        const namespace = variable(dashboard, 'namespace');
        assert.equal(namespace.type, 'query');
        assert.equal(variableQueryText(namespace), 'label_values(up, namespace)');
        assert.equal(namespace.includeAll, true);
        assert.equal(namespace.allValue, '.*');
        assert.deepEqual(namespace.datasource, expectedDatasource);

        const service = variable(dashboard, 'service');
        assert.equal(service.type, 'query');
        assert.equal(variableQueryText(service), 'label_values(http_server_request_duration_seconds_count{namespace=~"$namespace"}, service_name)');
        assert.equal(service.includeAll, true);
        assert.equal(service.multi, true);
        assert.deepEqual(service.datasource, expectedDatasource);
      });

      it('when any datasource is named, then it is the datasource variable, never a hard-coded uid', () => {
        const text = JSON.stringify(dashboard);
        const uids = [...text.matchAll(/"uid":"([^"]*)"/g)].map((match) => match[1]);
        // The dashboard's own uid and Grafana's built-in annotation source aside.
        const datasourceUids = uids.filter((uid) => uid !== dashboard.uid && uid !== '-- Grafana --');
        assert.ok(datasourceUids.length > 0);
        assert.deepEqual([...new Set(datasourceUids)], ['${datasource}']);
      });

      it('when panels are listed, then ids are unique and every query panel and target uses ${datasource}', () => {
        const panels = allPanels(dashboard);
        const ids = panels.map((panel) => panel.id);
        assert.ok(
          ids.every((id) => typeof id === 'number'),
          'every panel has a numeric id',
        );
        assert.equal(new Set(ids).size, ids.length, `duplicate panel ids in ${dashboard.file}`);
        const queryPanels = panels.filter((panel) => panel.type !== 'row');
        assert.ok(queryPanels.length > 0);
        for (const panel of queryPanels) {
          assert.deepEqual(panel.datasource, expectedDatasource, `panel ${String(panel.title)}`);
          assert.ok((panel.targets ?? []).length > 0, `panel ${String(panel.title)} has no target`);
          for (const target of panel.targets ?? []) {
            assert.deepEqual(target.datasource, expectedDatasource, `panel ${String(panel.title)} target ${String(target.refId)}`);
            assert.ok(typeof target.expr === 'string' && target.expr.trim() !== '', `panel ${String(panel.title)} target ${String(target.refId)} has no expr`);
          }
          const refIds = (panel.targets ?? []).map((target) => target.refId);
          assert.equal(new Set(refIds).size, refIds.length, `duplicate refIds in panel ${String(panel.title)}`);
        }
      });

      it('when panels are laid out, then they fit the 24-column grid without overlapping', () => {
        const boxes = allPanels(dashboard).map((panel) => {
          const grid = panel.gridPos;
          assert.ok(grid, `panel ${String(panel.title)} has no gridPos`);
          assert.ok(grid.x >= 0 && grid.w > 0 && grid.x + grid.w <= 24, `panel ${String(panel.title)} leaves the grid`);
          return { title: String(panel.title), ...grid };
        });
        for (const [i, a] of boxes.entries()) {
          for (const b of boxes.slice(i + 1)) {
            const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
            assert.ok(!overlap, `panels ${a.title} and ${b.title} overlap`);
          }
        }
      });

      it('when expressions select series, then each is scoped to the namespace variable', () => {
        for (const panel of allPanels(dashboard).filter((candidate) => candidate.type !== 'row')) {
          for (const target of panel.targets ?? []) {
            const expr = String(target.expr);
            const selectors = expr.match(/[a-z_:]+\{[^}]*\}/g) ?? [];
            assert.ok(selectors.length > 0, `panel ${String(panel.title)}: no label selector in ${expr}`);
            for (const selector of selectors) {
              assert.match(selector, /namespace=~"\$namespace"/, `panel ${String(panel.title)}: ${selector}`);
            }
          }
        }
      });

      it('when a panel shows request or call latency from the histogram buckets, then its targets show exemplars (a click opens the trace)', () => {
        const latency = allPanels(dashboard).flatMap((panel) =>
          (panel.targets ?? [])
            .filter((target) => /http_(server|client)_request_duration_seconds_bucket/.test(String(target.expr)))
            .map((target) => `${String(panel.title)} ${String(target.refId)}: ${String(target.exemplar)}`),
        );
        assert.ok(latency.length > 0, `${dashboard.file} has no latency panel`);
        assert.deepEqual(
          latency.filter((line) => !line.endsWith(': true')),
          [],
        );
      });
    });
  }

  it('when the per-service dashboard is read, then every selector is scoped to the service variable', () => {
    const service = dashboards.find((dashboard) => dashboard.uid === 'video-mesh-service');
    assert.ok(service);
    for (const panel of allPanels(service).filter((candidate) => candidate.type !== 'row')) {
      for (const target of panel.targets ?? []) {
        for (const selector of String(target.expr).match(/[a-z_:]+\{[^}]*\}/g) ?? []) {
          assert.match(selector, /service_name=~"\$service"/, `panel ${String(panel.title)}: ${selector}`);
        }
      }
    }
  });

  it("when the overview is read, then its SLO row shows every SLO of the spec: budget remaining, and burn rates divided by that SLO's budget", () => {
    const overview = dashboards.find((dashboard) => dashboard.uid === 'video-mesh-overview');
    assert.ok(overview);
    const panel = (title: string) => {
      const found = allPanels(overview).find((candidate) => candidate.title === title);
      assert.ok(found, `no panel ${title}`);
      return (found.targets ?? []).map((target) => String(target.expr));
    };
    assert.match(panel('Error budget remaining (30 days)').join('\n'), /slo:period_error_budget_remaining:ratio\{namespace=~"\$namespace"\}/);
    const burns = panel('Burn rate per window');
    const slos = readSpec(readFileSync(sloSpecFile(), 'utf8')).slos;
    assert.deepEqual(
      burns.map((expr) => /sloth_slo="([^"]+)"/.exec(expr)?.[1]),
      slos.map((slo) => slo.name),
    );
    for (const slo of slos) {
      const expr = burns.find((candidate) => candidate.includes(`sloth_slo="${slo.name}"`)) ?? '';
      const divisor = Number(/\/ ([\d.]+)$/.exec(expr)?.[1]);
      assert.equal(divisor, Number(((100 - slo.objective) / 100).toPrecision(12)), `${slo.name}: ${expr}`);
      for (const window of ['5m', '30m', '1h', '2h', '6h', '1d', '3d'])
        assert.ok(expr.includes(`slo:sli_error:ratio_rate${window}{`), `${slo.name}: no ${window} in ${expr}`);
    }
  });

  it('when the overview is read, then it covers what the brief lists', () => {
    const overview = dashboards.find((dashboard) => dashboard.uid === 'video-mesh-overview');
    assert.ok(overview);
    const exprs = allPanels(overview).flatMap((panel) => (panel.targets ?? []).map((target) => String(target.expr)));
    const mentions = (needle: string): boolean => exprs.some((expr) => expr.includes(needle));
    for (const needle of [
      'http_server_request_duration_seconds_count',
      'status_code=~"5.."',
      'http_server_request_duration_seconds_bucket',
      'route="/play/asset/:assetId/user/:userId"',
      'play_answers_total',
      'play_degraded_parts_total',
      'view_events_published_total',
      'view_events_processed_total',
      'view_event_lag_seconds_bucket',
      'jetstream_consumer_pending_messages',
      'jetstream_consumer_ack_pending_messages',
      'outcome="dead_lettered"',
      'up{',
    ]) {
      assert.ok(mentions(needle), `no overview panel queries ${needle}`);
    }
    for (const quantile of ['0.5', '0.95', '0.99']) {
      assert.ok(
        exprs.some((expr) => expr.startsWith(`histogram_quantile(${quantile},`) && expr.includes('/play/asset/')),
        `no play p${quantile}`,
      );
    }
  });

  it('when expressions are extracted, then every variable is substituted and none is left empty', () => {
    const expressions = dashboardExpressions();
    assert.ok(expressions.length >= 30, `only ${expressions.length} expressions`);
    for (const { origin, expr } of expressions) {
      assert.doesNotMatch(expr, /\$|\[\[/, `${origin} still holds a variable: ${expr}`);
      assert.notEqual(expr.trim(), '', origin);
    }
  });
});

describe('PromQL helpers', () => {
  it('when a Grafana variable is known, then every syntax of it is substituted', () => {
    const values = { namespace: 'ns', service: '(a|b)', rateInterval: '1m', interval: '15s', range: '1h' };
    assert.equal(
      substitute('rate(x{namespace=~"$namespace", service_name=~"${service}", a="[[namespace]]"}[$__rate_interval]) + y[$__range:$__interval]', values),
      'rate(x{namespace=~"ns", service_name=~"(a|b)", a="ns"}[1m]) + y[1h:15s]',
    );
  });

  it('when a Grafana variable is unknown, then substitution fails naming it', () => {
    assert.throws(() => substitute('x{a="$nope"}'), /\$nope/);
  });

  it('when a variable query is label_values, then it becomes a count by the label', () => {
    assert.equal(variableQueryAsPromql('label_values(up, namespace)'), 'count by (namespace) (up)');
    assert.equal(variableQueryAsPromql('label_values(m{a=~"$x", b="1,2"}, service_name)'), 'count by (service_name) (m{a=~"$x", b="1,2"})');
  });

  it('when an alert compares against a threshold, then only the measured expression is kept', () => {
    assert.deepEqual(comparisonOperands('sum by (a) (rate(x[5m])) / sum(rate(y[5m])) > 0.05'), ['sum by (a) (rate(x[5m])) / sum(rate(y[5m]))']);
    assert.deepEqual(comparisonOperands('histogram_quantile(0.95, sum by (le) (rate(h_bucket{a="x>y"}[5m])))\n> 0.5'), [
      'histogram_quantile(0.95, sum by (le) (rate(h_bucket{a="x>y"}[5m])))',
    ]);
  });

  it('when comparisons are joined by set operators and modifiers, then each measured operand is kept', () => {
    assert.deepEqual(comparisonOperands('(\n  max by (s) (p) > 1000\n)\nand on (s)\n(\n  max by (s) (deriv(p[10m])) > 0\n)'), [
      'max by (s) (p)',
      'max by (s) (deriv(p[10m]))',
    ]);
    assert.deepEqual(comparisonOperands('a == bool 1 or vector(0) unless b'), ['a', 'vector(0)', 'b']);
    assert.deepEqual(comparisonOperands('up * on (job) group_left (service_name) group by (job, service_name) (x) == 0'), [
      'up * on (job) group_left (service_name) group by (job, service_name) (x)',
    ]);
  });

  it('when an expression has no comparison, then it is kept whole', () => {
    assert.deepEqual(comparisonOperands('sum(rate(order_total[5m]))'), ['sum(rate(order_total[5m]))']);
  });
});
