// TLS between the services and NATS, as the chart renders it: the
// self-contained server serves TLS only, with a certificate the chart
// generates (a CA and a certificate it signed for the Service's names, kept
// across upgrades), cert-manager issues, or an operator's Secret holds; each
// service that uses NATS reaches it at tls:// and trusts the CA alone (ca.crt
// mounted, never the key). Production reaches the official chart's servers the
// same way, with their CA from a Secret. A real nats-server with the rendered
// certificate is test/chart/self-contained.test.ts's; services verifying a
// server are test/e2e/nats-identity.test.ts's.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { at, component, container, containerEnv, podTemplate } from './addons';
import { chartDir, templateMajors, parseManifests, render, type Manifest, type RenderOptions } from './helm';
import { renderOnLive } from './live';

const natsUsers = ['play', 'metadata', 'cdnurl', 'queue-listener'];
const serviceNames = ['video-mesh-nats', 'video-mesh-nats.video-mesh', 'video-mesh-nats.video-mesh.svc', 'video-mesh-nats.video-mesh.svc.cluster.local'];
const certManager: RenderOptions = { apiVersions: ['cert-manager.io/v1'], values: { 'nats.tls.certManager.issuerRef.name': 'internal-ca' } };

interface Volume {
  name: string;
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
}
interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}

const deploymentOf = (manifests: readonly Manifest[], service: string) => component(manifests, 'Deployment', service);
const volumesOf = (workload: Manifest) => (at(podTemplate(workload).spec, 'volumes') ?? []) as Volume[];
const mountsOf = (workload: Manifest) => (at(container(workload), 'volumeMounts') ?? []) as Mount[];
const natsConf = (manifests: readonly Manifest[]) => String(at(component(manifests, 'ConfigMap', 'nats'), 'data', 'nats.conf'));
const tlsSecret = (manifests: readonly Manifest[]) => manifests.find((m) => m.kind === 'Secret' && m.metadata.name === 'video-mesh-nats-tls');
const certificates = (manifests: readonly Manifest[]) => manifests.filter((m) => m.kind === 'Certificate');

/** What a service that uses NATS is given: its NATS_URL, and the CA file it trusts with the Secret and keys behind it. */
function natsTrustOf(manifests: readonly Manifest[], service: string) {
  const deployment = deploymentOf(manifests, service);
  const env = containerEnv(container(deployment));
  const caFile = env.get('NODE_EXTRA_CA_CERTS')?.value;
  const mount = caFile ? mountsOf(deployment).find((m) => caFile.startsWith(`${m.mountPath}/`)) : undefined;
  const volume = mount ? volumesOf(deployment).find((v) => v.name === mount.name) : undefined;
  return { url: env.get('NATS_URL')?.value ?? '', caFile, mount, secret: volume?.secret };
}

/** Every service that uses NATS trusts exactly `secret`'s `key`, mounted read-only, and nothing else of it. */
function assertTrusts(manifests: readonly Manifest[], secret: string, key = 'ca.crt'): void {
  for (const service of natsUsers) {
    const trust = natsTrustOf(manifests, service);
    assert.match(trust.url, /^tls:\/\//, service);
    assert.ok(trust.mount?.readOnly, `${service}: NODE_EXTRA_CA_CERTS (${trust.caFile}) names no read-only mount`);
    assert.equal(trust.caFile, `${trust.mount.mountPath}/${key}`, service);
    assert.deepEqual(trust.secret, { secretName: secret, items: [{ key, path: key }] }, `${service} mounts more than the CA`);
  }
  assert.equal(containerEnv(container(deploymentOf(manifests, 'reporting'))).get('NODE_EXTRA_CA_CERTS'), undefined, 'reporting uses no NATS');
}

/** No pod but the NATS server's mounts the certificate's key. */
function assertKeyOnlyInServer(manifests: readonly Manifest[]): void {
  for (const workload of manifests.filter((m) => ['Deployment', 'StatefulSet', 'Pod'].includes(m.kind))) {
    const podSpec = workload.kind === 'Pod' ? (workload['spec'] as Record<string, unknown>) : podTemplate(workload).spec;
    for (const volume of (at(podSpec, 'volumes') ?? []) as Volume[]) {
      const keys = volume.secret?.items?.map((i) => i.key) ?? [];
      const readsKey = volume.secret?.secretName.includes('nats-tls') && (keys.length === 0 || keys.includes('tls.key'));
      if (readsKey)
        assert.equal(workload.metadata.labels?.['app.kubernetes.io/component'], 'nats', `${workload.kind}/${workload.metadata.name} mounts the key`);
    }
  }
}

for (const major of templateMajors) {
  describe(`TLS to NATS, Helm ${major}`, () => {
    test('when rendered with defaults, then the server serves TLS with a generated certificate its CA signed for the Service, and every NATS user trusts that CA alone', () => {
      const manifests = render(major);
      const conf = natsConf(manifests);
      assert.match(conf, /^tls \{\n {2}cert_file: "\/etc\/nats-certs\/tls\.crt"\n {2}key_file: "\/etc\/nats-certs\/tls\.key"\n/m);
      const server = component(manifests, 'StatefulSet', 'nats');
      const certs = mountsOf(server).find((m) => m.mountPath === '/etc/nats-certs');
      assert.deepEqual(volumesOf(server).find((v) => v.name === certs?.name)?.secret?.secretName, 'video-mesh-nats-tls');

      const data = at(tlsSecret(manifests), 'data') as Record<string, string>;
      const pem = (key: string) => new X509Certificate(Buffer.from(data[key] ?? '', 'base64'));
      const [ca, cert] = [pem('ca.crt'), pem('tls.crt')];
      assert.ok(ca.ca, 'ca.crt is no CA');
      assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'the certificate is not signed by the CA');
      assert.deepEqual(cert.subjectAltName?.split(', ').sort(), serviceNames.map((n) => `DNS:${n}`).sort());
      assert.ok(
        Date.parse(cert.validFrom) <= Date.now() && Date.parse(cert.validTo) > Date.now() + 365 * 86_400_000,
        `valid ${cert.validFrom} to ${cert.validTo}`,
      );
      assert.equal(new URL(natsTrustOf(manifests, 'play').url).hostname, 'video-mesh-nats', 'the services reach a name the certificate has');
      assertTrusts(manifests, 'video-mesh-nats-tls');
      assertKeyOnlyInServer(manifests);
      assert.deepEqual(certificates(manifests), []);
    });

    test('when the cluster serves cert-manager and an issuer is named, then a Certificate for the Service is rendered and no generated one; without cert-manager the chart says so', () => {
      const manifests = render(major, certManager);
      const [certificate, ...more] = certificates(manifests);
      assert.equal(more.length, 0);
      assert.equal(certificate?.apiVersion, 'cert-manager.io/v1');
      assert.equal(at(certificate, 'spec', 'secretName'), 'video-mesh-nats-tls');
      assert.deepEqual(at(certificate, 'spec', 'dnsNames'), serviceNames);
      assert.deepEqual(at(certificate, 'spec', 'issuerRef'), { name: 'internal-ca', kind: 'Issuer', group: 'cert-manager.io' });
      assert.equal(tlsSecret(manifests), undefined, 'a generated certificate beside cert-manager');
      assert.ok(
        volumesOf(component(manifests, 'StatefulSet', 'nats')).some((v) => v.secret?.secretName === 'video-mesh-nats-tls'),
        "the server reads cert-manager's Secret",
      );
      assertTrusts(manifests, 'video-mesh-nats-tls');
      assertKeyOnlyInServer(manifests);
      assert.throws(
        () => render(major, { values: certManager.values ?? {} }),
        /nats\.tls\.certManager\.issuerRef\.name is "internal-ca", but the cluster does not serve cert-manager\.io\/v1/,
      );
    });

    test("when an existing Secret is named, then the chart renders no certificate and everyone uses the operator's Secret", () => {
      const manifests = render(major, {
        values: { 'nats.tls.existingSecret': 'nats-cert', ...certManager.values },
        apiVersions: certManager.apiVersions ?? [],
      });
      assert.deepEqual(certificates(manifests), []);
      assert.equal(tlsSecret(manifests), undefined);
      const server = component(manifests, 'StatefulSet', 'nats');
      assert.ok(volumesOf(server).some((v) => v.secret?.secretName === 'nats-cert'));
      assertTrusts(manifests, 'nats-cert');
    });

    test('when TLS is turned off, then the server and the services speak plain NATS and no certificate or CA is rendered or mounted', () => {
      const manifests = render(major, { values: { 'nats.tls.enabled': 'false' } });
      assert.doesNotMatch(natsConf(manifests), /tls \{/);
      assert.equal(tlsSecret(manifests), undefined);
      for (const service of natsUsers) {
        const trust = natsTrustOf(manifests, service);
        assert.match(trust.url, /^nats:\/\//);
        assert.equal(trust.caFile, undefined);
        assert.ok(!volumesOf(deploymentOf(manifests, service)).some((v) => v.name === 'nats-ca'));
      }
    });

    test("when rendered with values-production.yaml, then the services reach the official chart's servers at tls:// and trust the CA copied from them; a CA for a plain URL is refused", () => {
      const manifests = render(major, { valuesFiles: [join(chartDir, 'values-production.yaml')] });
      assertTrusts(manifests, 'video-mesh-nats-ca');
      assert.equal(new URL(natsTrustOf(manifests, 'play').url).host, 'nats.nats.svc:4222');
      assert.throws(
        () => render(major, { values: { 'nats.selfContained': 'false', 'nats.url': 'nats://nats.nats.svc:4222', 'nats.tls.caSecret': 'nats-ca' } }),
        /nats\.tls\.caSecret names the CA of the external NATS, but nats\.url \(nats:\/\/nats\.nats\.svc:4222\) is not tls:\/\//,
      );
    });

    test('when a live release is upgraded, then its CA and certificate are the ones it holds and the server and the services do not roll; without them, a new pair rolls both', () => {
      const before = render(major);
      const upgraded = renderOnLive(major, {}, before);
      assert.equal(upgraded.status, 0, upgraded.stderr);
      const after = parseManifests(upgraded.stdout);
      assert.deepEqual(at(tlsSecret(after), 'data'), at(tlsSecret(before), 'data'));
      const rolls = (m: readonly Manifest[]) =>
        ['StatefulSet', 'Deployment'].flatMap((kind) => m.filter((o) => o.kind === kind).map((o) => podTemplate(o).metadata.annotations));
      assert.deepEqual(rolls(after), rolls(before));
      // The Secret deleted (how the pair is rotated): a new CA, and both the server and play roll onto it.
      const rotated = parseManifests(
        renderOnLive(
          major,
          {},
          before.filter((m) => m !== tlsSecret(before)),
        ).stdout,
      );
      assert.notEqual(at(tlsSecret(rotated), 'data', 'ca.crt'), at(tlsSecret(before), 'data', 'ca.crt'));
      for (const [kind, name] of [
        ['StatefulSet', 'nats'],
        ['Deployment', 'play'],
      ] as const) {
        const annotations = (m: readonly Manifest[]) => podTemplate(component(m, kind, name)).metadata.annotations;
        assert.notDeepEqual(annotations(rotated), annotations(before), `${name} does not roll onto the new CA`);
      }
    });
  });
}
