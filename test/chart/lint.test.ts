// helm lint --strict and helm template, with Helm 3 and Helm 4, for every value set.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chartDir, helmMajors, render, runHelm, valuesArgs } from './helm';
import { kubeVersions, scenarios } from './scenarios';

for (const major of helmMajors) {
  describe(`Helm ${major}`, () => {
    for (const scenario of scenarios) {
      // Linted for the oldest Kubernetes only: what differs between versions
      // is what the templates render, and the next test renders for both.
      test(`when the chart is linted strictly with ${scenario.name}, then it passes`, () => {
        const result = runHelm(major, ['lint', '--strict', chartDir, ...valuesArgs(scenario.options), '--kube-version', kubeVersions[0]]);
        assert.equal(result.status, 0, `helm lint (kube ${kubeVersions[0]}):\n${result.stdout}${result.stderr}`);
        assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      });

      test(`when the chart is rendered with ${scenario.name} for the oldest and newest Kubernetes, then it renders the five services`, () => {
        for (const kubeVersion of kubeVersions) {
          const manifests = render(major, { ...scenario.options, kubeVersion });
          const deployments = manifests.filter((m) => m.kind === 'Deployment').map((m) => m.metadata.labels?.['app.kubernetes.io/component']);
          assert.deepEqual(deployments.sort(), ['cdnurl', 'metadata', 'play', 'queue-listener', 'reporting']);
        }
      });
    }

    test('when the Kubernetes version is older than Chart.yaml kubeVersion, then rendering fails', () => {
      const result = runHelm(major, ['template', 'video-mesh', chartDir, '--kube-version', '1.28.0']);
      assert.notEqual(result.status, 0);
      assert.match(result.stderr, /kubeVersion|incompatible/i);
    });
  });
}
