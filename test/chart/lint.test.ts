// helm lint --strict, with Helm 3 and Helm 4, for every value set (validate.test.ts renders them).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chartDir, helmMajors, runHelm, valuesArgs } from './helm';
import { kubeVersions, scenarios } from './scenarios';

for (const major of helmMajors) {
  describe(`Helm ${major}`, () => {
    for (const scenario of scenarios) {
      // Linted for the oldest Kubernetes only: what differs between versions
      // is what the templates render, and validate.test.ts renders every
      // value set for both.
      test(`when the chart is linted strictly with ${scenario.name}, then it passes`, () => {
        const result = runHelm(major, ['lint', '--strict', chartDir, ...valuesArgs(scenario.options), '--kube-version', kubeVersions[0]]);
        assert.equal(result.status, 0, `helm lint (kube ${kubeVersions[0]}):\n${result.stdout}${result.stderr}`);
        assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      });
    }

    test('when the Kubernetes version is older than Chart.yaml kubeVersion, then rendering fails', () => {
      const result = runHelm(major, ['template', 'video-mesh', chartDir, '--kube-version', '1.28.0']);
      assert.notEqual(result.status, 0);
      assert.match(result.stderr, /kubeVersion|incompatible/i);
    });
  });
}
