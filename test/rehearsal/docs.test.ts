// The documented commands the rehearsal carries out, and the Ingress rules it
// follows, read without podman: a doc line it could not follow, or a rule
// that routes nowhere, fails here at once.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { render } from '../chart/helm';
import { parseDocCommand, shellBlockAfter } from './doc-commands';
import { KUBERNETES_DOC } from './first-contact';
import { ingressTarget, readIngresses } from './ingress';
import { ofKind, serviceSchema } from './kube';
import { FAULT_TOGGLES, FIRST_PLAY } from './steps';

describe("the docs' commands and the Ingress rules, as the rehearsal reads them", () => {
  const doc = readFileSync(KUBERNETES_DOC, 'utf8');

  test('when the first-play and fault-toggle blocks of docs/kubernetes.md are read, then every line is one the rehearsal can carry out', () => {
    for (const marker of [FIRST_PLAY, FAULT_TOGGLES]) {
      const lines = shellBlockAfter(doc, marker);
      assert.ok(lines.length >= 3, `${marker}: ${lines.join(' | ')}`);
      for (const line of lines) assert.doesNotThrow(() => parseDocCommand(line), line);
    }
  });

  test('when a doc line is not one of the known commands, then it is refused by name', () => {
    assert.throws(() => parseDocCommand('kubectl delete namespace video-mesh'), /cannot carry out "kubectl delete namespace video-mesh"/);
    assert.deepEqual(parseDocCommand("export X=$(kubectl -n ns get secret s -o jsonpath='{.data.k-1}' | base64 -d)"), {
      kind: 'export-secret',
      variable: 'X',
      namespace: 'ns',
      secret: 's',
      key: 'k-1',
    });
  });

  test("when the chart's Ingress is asked for the documented paths, then /play goes to play's Service port and nothing else is routed", () => {
    const manifests = render(4);
    const ingresses = readIngresses(manifests);
    const services = ofKind(manifests, 'Service', serviceSchema);
    assert.deepEqual(ingressTarget(ingresses, services, 'localhost', '/play/asset/123/user/1'), {
      ingress: 'video-mesh-play',
      service: 'video-mesh-play',
      port: 8080,
    });
    for (const path of ['/playlist', '/metrics', '/admin/faults', '/']) {
      assert.throws(() => ingressTarget(ingresses, services, 'localhost', path), /no Ingress rule routes/, path);
    }
    const hosted = render(4, { values: { 'ingress.host': 'play.example.com' } });
    assert.throws(() => ingressTarget(readIngresses(hosted), services, 'localhost', '/play/asset/1/user/1'), /no Ingress rule/);
    assert.equal(ingressTarget(readIngresses(hosted), services, 'play.example.com', '/play').service, 'video-mesh-play');
  });
});
