/**
 * A hostile pod on the broker: a real nats-server with the identities of
 * contracts/nats-rights.ts, as the chart and ./scripts/mesh run it. Without
 * credentials nothing connects; with a service's credentials, everything
 * outside what that service's code does is refused by the server, and
 * everything inside works.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { AuthorizationError, PermissionViolationError, connect, type NatsConnection } from '@nats-io/transport-node';
import { STREAM, VIEW_CONSUMER, VIEW_SUBJECT, ensureEventStream } from '../../services/platform/events';
import { connectOptionsOf, identityProblem } from '../../services/platform/nats';
import { ensureViewConsumer } from '../../services/queue-listener/view-consumer';
import type { NatsIdentity } from '../../services/contracts/nats-rights';
import { issueServerCertificate, makeCertificateAuthority } from '../../kit/certificates';
import { metricValue, scrape } from '../../kit/metrics';
import { startNats, startService, type NatsServer } from '../../kit/processes';
import { waitFor } from '../../kit/wait';

/** A request the server refuses is answered at once; this only bounds a refusal that never comes. */
const ANSWER_MS = 10_000;

const viewEvent = () => JSON.stringify({ eventId: randomUUID(), assetId: '123', userId: 'mallory', occurredAt: new Date().toISOString() });

describe('NATS identities: each service may do only what its code does', () => {
  let nats: NatsServer;
  let operator: JetStreamManager;
  const connections: NatsConnection[] = [];
  const as = async (identity: NatsIdentity) => {
    const nc = await connect({ ...nats.connectOptions(identity), timeout: ANSWER_MS });
    connections.push(nc);
    return nc;
  };
  /** The permission violations the server reported on `nc`, as they come. */
  const violations = (nc: NatsConnection) => {
    const seen: PermissionViolationError[] = [];
    void (async () => {
      for await (const status of nc.status()) if (status.type === 'error' && status.error instanceof PermissionViolationError) seen.push(status.error);
    })();
    return seen;
  };
  /** The call fails because the server refused a publish or subscription it needed (nats.js wraps it in a RequestError). */
  const refused = (call: Promise<unknown>, what: RegExp) =>
    assert.rejects(call, (err: unknown) => {
      let e: unknown = err;
      while (e instanceof Error && !(e instanceof PermissionViolationError)) e = e.cause;
      assert.ok(e instanceof PermissionViolationError, `not a permission violation: ${String(err)}`);
      assert.match(e.message, what);
      return true;
    });
  const storedViews = async () => (await operator.streams.info(STREAM)).state.subjects?.[VIEW_SUBJECT] ?? 0;

  before(async () => {
    nats = await startNats();
    // The queue-listener sets the stream and its consumer up, as at its start.
    const listener = await jetstreamManager(await as('queue-listener'));
    await ensureEventStream(listener);
    await ensureViewConsumer(listener);
    operator = await jetstreamManager(await as('operator'));
  });
  after(async () => {
    await Promise.all(connections.map((nc) => nc.close()));
    await nats?.stop();
  });

  it('when a client brings no credentials or a wrong password, then the server refuses it, and the message names what is wrong', async () => {
    await assert.rejects(connect({ servers: nats.url, timeout: ANSWER_MS }), AuthorizationError);
    const wrong = { ...nats.target('play'), pass: 'not-the-password' };
    const err = await connect({ servers: wrong.servers, user: 'play', pass: wrong.pass, timeout: ANSWER_MS }).then(
      () => assert.fail('connected with a wrong password'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AuthorizationError, String(err));
    assert.match(identityProblem(err, wrong) ?? '', /NATS refused the identity "play": check the user and password in NATS_URL/);
  });

  it('when metadata publishes a forged view, then the server refuses it and the stream stores nothing', async () => {
    const nc = await as('metadata');
    const seen = violations(nc);
    const before = await storedViews();
    await refused(jetstream(nc).publish(VIEW_SUBJECT, viewEvent(), { timeout: ANSWER_MS }), /Permissions Violation/);
    nc.publish(VIEW_SUBJECT, viewEvent());
    await waitFor(() => seen.some((v) => v.subject === VIEW_SUBJECT), { what: 'the core publish refused too' });
    assert.equal(await storedViews(), before);
  });

  it('when play deletes or purges the stream or the consumer, then each is refused and both are still there', async () => {
    const jsm = await jetstreamManager(await as('play'), { checkAPI: false });
    await refused(jsm.streams.delete(STREAM), /Publish to "\$JS\.API\.STREAM\.DELETE\.EVENTS"/);
    await refused(jsm.streams.purge(STREAM), /Publish to "\$JS\.API\.STREAM\.PURGE\.EVENTS"/);
    await refused(jsm.consumers.delete(STREAM, VIEW_CONSUMER), /Publish to "\$JS\.API\.CONSUMER\.DELETE\.EVENTS\.view-recorder"/);
    await refused(jsm.streams.update(STREAM, { max_age: 1 }), /Publish to "\$JS\.API\.STREAM\.(INFO|UPDATE)\.EVENTS"/);
    assert.equal((await operator.streams.info(STREAM)).config.name, STREAM);
    assert.equal((await operator.consumers.info(STREAM, VIEW_CONSUMER)).name, VIEW_CONSUMER);
  });

  it("when play consumes the views, or metadata subscribes to them, then the server refuses both: nobody but the listener reads users' views", async () => {
    await refused(jetstream(await as('play')).consumers.get(STREAM, VIEW_CONSUMER), /Publish to "\$JS\.API\.CONSUMER\.INFO\.EVENTS\.view-recorder"/);
    const playJsm = await jetstreamManager(await as('play'), { checkAPI: false });
    await refused(
      playJsm.consumers.add(STREAM, { durable_name: 'spy', ack_policy: AckPolicy.None }),
      /Publish to "\$JS\.API\.CONSUMER\.(DURABLE\.)?CREATE\.EVENTS/,
    );
    const nc = await as('metadata');
    const seen = violations(nc);
    nc.subscribe('events.>');
    await waitFor(() => seen.some((v) => v.operation === 'subscription'), { what: 'the subscription refused' });
  });

  it("when play publishes a catalog change, or one catalog service publishes the other's, then the server refuses it and no cache hears it", async () => {
    const listenerOfNotices = await as('play');
    const heard: string[] = [];
    listenerOfNotices.subscribe('catalog.changed.>', { callback: (_err, msg) => void heard.push(msg.subject) });
    await listenerOfNotices.flush();
    const play = await as('play');
    const metadata = await as('metadata');
    const [playSeen, metadataSeen] = [violations(play), violations(metadata)];
    play.publish('catalog.changed.metadata.123', '{}');
    metadata.publish('catalog.changed.cdnurl.123', '{}');
    await waitFor(() => playSeen.length > 0 && metadataSeen.length > 0, { what: 'both publishes refused' });
    // Inside its rights: metadata's own notice arrives, and after the refused ones, so they had their chance.
    metadata.publish('catalog.changed.metadata.123', '{}');
    await waitFor(() => heard.length > 0, { what: "metadata's own notice heard" });
    assert.deepEqual(heard, ['catalog.changed.metadata.123']);
  });

  it("when another identity listens on play's inbox, then the server refuses it: the acks of play's publishes are play's", async () => {
    const nc = await as('queue-listener');
    const seen = violations(nc);
    nc.subscribe('_INBOX.play.>');
    await waitFor(() => seen.some((v) => v.subject === '_INBOX.play.>'), { what: 'the subscription refused' });
  });

  it('when each service does what its code does, then it works: play publishes a view, the listener pulls it, acks it and dead-letters', async () => {
    const stored = await jetstream(await as('play')).publish(VIEW_SUBJECT, viewEvent(), { msgID: randomUUID(), timeout: ANSWER_MS });
    assert.equal(stored.stream, STREAM);
    const listener = jetstream(await as('queue-listener'));
    const consumer = await listener.consumers.get(STREAM, VIEW_CONSUMER);
    const msg = await consumer.next({ expires: ANSWER_MS });
    assert.ok(msg, 'a view pulled');
    assert.equal(await msg.ackAck({ timeout: ANSWER_MS }), true);
    await listener.publish('events.deadletter.view', msg.data, { timeout: ANSWER_MS });
  });
});

describe('a service whose NATS identity is refused', () => {
  it('when play starts with a wrong password, then it logs what is wrong, naming the identity, and is not ready', async (t) => {
    const nats = await startNats();
    t.after(() => nats.stop());
    const wrong = nats.urlOf('play').replace(/:[^:@/]+@/, ':wrong-password@');
    const play = await startService('play', { NATS_URL: wrong });
    t.after(() => play.stop());
    await waitFor(() => /NATS refused the identity \\"play\\"/.test(play.output()), { what: 'the refusal logged' });
    assert.ok(!play.output().includes('wrong-password'), 'the password is not logged');
    assert.equal((await fetch(`${play.url}/readyz`)).status, 503);
  });
});

describe('NATS over TLS, as the chart serves it: the services verify the server', () => {
  const ca = makeCertificateAuthority('video-mesh test NATS CA');
  const serverCertificate = (options?: { expired: boolean }) =>
    issueServerCertificate(ca, mkdtempSync(join(tmpdir(), 'vm-nats-cert-')), ['127.0.0.1', 'localhost'], options);
  let nats: NatsServer;
  before(async () => {
    nats = await startNats({ tls: serverCertificate() });
  });
  after(() => nats?.stop());

  /** How a client's connection to `server` as play fails, given the CAs it trusts: the message a service would log. */
  const refusal = async (server: NatsServer, trusted: string | undefined) => {
    const target = server.target('play');
    const err = await connect({ ...connectOptionsOf(target), ...(trusted ? { tls: { ca: readFileSync(trusted, 'utf8') } } : {}), timeout: ANSWER_MS }).then(
      async (nc) => {
        await nc.close();
        return assert.fail('connected to a server it should not trust');
      },
      (e: unknown) => e,
    );
    return identityProblem(err, target) ?? String(err);
  };

  it("when play is given tls:// and the CA that signed the server's certificate, then it connects over TLS", async (t) => {
    assert.match(nats.urlOf('play'), /^tls:\/\//);
    const play = await startService('play', { ...nats.env('play'), NODE_EXTRA_CA_CERTS: ca.certFile, LOG_LEVEL: 'warn' });
    t.after(() => play.stop());
    await waitFor(async () => metricValue(await scrape(play.url), 'nats_connected') === 1, { what: 'play connected over TLS' });
  });

  it('when a client trusts only the public CAs, or play another CA, then the server is refused with the message that names NODE_EXTRA_CA_CERTS, and play is not ready', async (t) => {
    assert.match(
      await refusal(nats, undefined),
      /the NATS server's certificate does not verify \(\w+: .*\): check NODE_EXTRA_CA_CERTS names the CA that signed it/,
    );
    const play = await startService('play', { ...nats.env('play'), NODE_EXTRA_CA_CERTS: makeCertificateAuthority('someone else').certFile });
    t.after(() => play.stop());
    await waitFor(() => /the NATS server's certificate does not verify/.test(play.output()), { what: 'the refusal logged' });
    assert.equal((await fetch(`${play.url}/readyz`)).status, 503);
    assert.equal(metricValue(await scrape(play.url), 'nats_connected'), 0);
  });

  it("when the server's certificate has expired, then a client trusting its CA is refused, and the message says it expired", async (t) => {
    const stale = await startNats({ tls: serverCertificate({ expired: true }) });
    t.after(() => stale.stop());
    assert.match(await refusal(stale, ca.certFile), /does not verify \(CERT_HAS_EXPIRED: certificate has expired\).*has not expired/);
  });
});
