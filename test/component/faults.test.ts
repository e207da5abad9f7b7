import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Router, type Request, type Response } from 'express';
import request from 'supertest';
import { ConfigError, commonConfigRules, commonConfigSchema, loadConfig } from '../../services/platform/config';
import { Faults, faultsAuth } from '../../services/platform/faults';
import { faultsConfigSchema, type FaultKind } from '../../services/platform/faults-config';
import { createHttpApp } from '../../services/platform/http';
import { publishFailure } from '../../services/play/faults';
import { pauseConsumer } from '../../services/queue-listener/faults';
import { sampleSum } from '../../kit/metrics';
import { waitFor } from '../../kit/wait';
import { appParts, assertErrorShape } from './support';

const TOKEN = 'faults-admin-token-0123456789';
const bearer = `Bearer ${TOKEN}`;

function build(options: { kinds?: FaultKind[]; enabled?: boolean } = {}) {
  const parts = appParts('metadata');
  const faults = new Faults({ metrics: parts.metrics, log: parts.log, kinds: options.kinds ?? [], auth: faultsAuth(TOKEN) });
  const routes = Router();
  routes.get('/content/asset/:assetId', (req, res) => {
    res.json({ id: req.params['assetId'], title: 'It' });
  });
  // As runService builds it: without FAULTS_ENABLED=true there are no Faults at all.
  const app = createHttpApp({ ...parts, routes, faults: options.enabled === false ? undefined : faults });
  const metrics = async () => (await request(app).get('/metrics')).text;
  return { app, faults, metrics };
}

const put = (app: ReturnType<typeof build>['app'], body: unknown, authorization = bearer) =>
  request(app)
    .put('/admin/faults')
    .set('authorization', authorization)
    .send(body as object);

describe('fault toggles (/admin/faults) on the shared HTTP app', () => {
  it('when no token is sent, then GET, PUT and DELETE are 401 and nothing changes', async () => {
    const { app, faults } = build();
    for (const res of [
      await request(app).get('/admin/faults'),
      await request(app).put('/admin/faults').send({ errorRate: 1 }),
      await request(app).delete('/admin/faults'),
    ]) {
      assert.equal(res.status, 401);
      assertErrorShape(res.body, 'unauthorized');
    }
    assert.equal(faults.settings.errorRate, 0);
  });

  it('when a wrong token is sent, then 403', async () => {
    const { app } = build();
    const res = await put(app, { errorRate: 1 }, 'Bearer not-the-admin-token-000');
    assert.equal(res.status, 403);
    assertErrorShape(res.body, 'forbidden');
  });

  it('when the toggles are not enabled, then /admin/faults is not there (404), and neither is the fault middleware', async () => {
    const { app, faults } = build({ enabled: false });
    for (const res of [
      await request(app).get('/admin/faults').set('authorization', bearer),
      await request(app).put('/admin/faults').set('authorization', bearer).send({ errorRate: 1 }),
    ]) {
      assert.equal(res.status, 404);
      assertErrorShape(res.body, 'not_found');
    }
    faults.set({ delayMs: 0, jitterMs: 0, errorRate: 1 });
    assert.equal((await request(app).get('/content/asset/123')).status, 200, 'no middleware reads the toggles');
  });

  it('when FAULTS_ENABLED=true has no FAULTS_TOKEN, then start-up fails with one line naming both; the admin token is not one', () => {
    const load = (env: NodeJS.ProcessEnv) => loadConfig(commonConfigSchema, env, commonConfigRules);
    assert.throws(
      () => load({ FAULTS_ENABLED: 'true', ADMIN_TOKEN: 'an-admin-token' }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /FAULTS_ENABLED=true, FAULTS_TOKEN=unset: FAULTS_ENABLED=true needs FAULTS_TOKEN/.test(err.message) &&
        !err.message.includes('\n'),
    );
    assert.equal(load({ FAULTS_ENABLED: 'true', FAULTS_TOKEN: TOKEN }).FAULTS_TOKEN, TOKEN);
    assert.equal(load({}).FAULTS_ENABLED, false, 'off unless asked');
  });

  it('when the toggles are read with no fault set, then every fault is off', async () => {
    const { app } = build();
    const res = await request(app).get('/admin/faults').set('authorization', bearer);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { delayMs: 0, jitterMs: 0, errorRate: 0 });
  });

  it('when a PUT sets faults, then it answers the whole new state, GET reads it back, and what it leaves out is off', async () => {
    const { app } = build();
    assert.deepEqual((await put(app, { delayMs: 100, errorRate: 0.5 })).body, { delayMs: 100, jitterMs: 0, errorRate: 0.5 });
    const replaced = await put(app, { jitterMs: 20 });
    assert.deepEqual(replaced.body, { delayMs: 0, jitterMs: 20, errorRate: 0 });
    assert.deepEqual((await request(app).get('/admin/faults').set('authorization', bearer)).body, { delayMs: 0, jitterMs: 20, errorRate: 0 });
  });

  for (const [what, body] of [
    ['an error rate above 1', { errorRate: 1.5 }],
    ['a negative error rate', { errorRate: -0.1 }],
    ['a negative delay', { delayMs: -1 }],
    ['a fractional delay', { delayMs: 1.5 }],
    ['a delay above 60 s', { delayMs: 60_001 }],
    ['a jitter above 60 s', { jitterMs: 60_001 }],
    ['a delay given as a string', { delayMs: '100' }],
    ['an unknown fault', { latency: 100 }],
    ["play's publishFailRate on another service", { publishFailRate: 0.5 }],
    ["queue-listener's pause on another service", { pause: true }],
    ['an array', [0.5]],
  ] as const) {
    it(`when a PUT carries ${what}, then 400 invalid_body naming the field, and the faults stay as they were`, async () => {
      const { app, faults } = build();
      await put(app, { delayMs: 5 });
      const res = await put(app, body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assertErrorShape(res.body, 'invalid_body');
      const field = Array.isArray(body) ? undefined : Object.keys(body)[0];
      if (field) assert.match((res.body as { message: string }).message, new RegExp(field));
      assert.deepEqual(faults.settings, { delayMs: 5, jitterMs: 0, errorRate: 0 });
    });
  }

  it('when a PUT is not JSON, then 415 or 400, never a change', async () => {
    const { app, faults } = build();
    const text = await request(app).put('/admin/faults').set('authorization', bearer).set('content-type', 'text/plain').send('errorRate=1');
    assert.equal(text.status, 415);
    const broken = await request(app).put('/admin/faults').set('authorization', bearer).set('content-type', 'application/json').send('{"errorRate":');
    assert.equal(broken.status, 400);
    assertErrorShape(broken.body, 'invalid_json');
    const empty = await request(app).put('/admin/faults').set('authorization', bearer);
    assert.equal(empty.status, 400);
    assert.equal(faults.settings.errorRate, 0);
  });

  it('when errorRate is 1, then business routes answer 503 fault_injected, and /healthz, /readyz, /metrics and /admin/faults do not', async () => {
    const { app, metrics } = build();
    await put(app, { errorRate: 1 });
    const res = await request(app).get('/content/asset/123');
    assert.equal(res.status, 503);
    assertErrorShape(res.body, 'fault_injected');
    // Unknown routes are the service's too: failed like the rest.
    assert.equal((await request(app).get('/nowhere')).status, 503);
    assert.equal((await request(app).get('/healthz')).status, 200);
    assert.equal((await request(app).get('/readyz')).status, 200);
    assert.equal((await request(app).get('/admin/faults').set('authorization', bearer)).status, 200);
    const text = await metrics();
    assert.equal(sampleSum(text, 'faults_active', { kind: 'error' }), 1);
    assert.equal(sampleSum(text, 'faults_active', { kind: 'delay' }), 0);
    assert.equal(sampleSum(text, 'faults_injected_total', { kind: 'error' }), 2);
    // The injected 503 is counted as the service's own answer, as a real one would be.
    assert.equal(sampleSum(text, 'http_server_request_duration_seconds_count', { status_code: '503' }), 2);
  });

  it('when errorRate is 0.5, then about half of the business requests fail', async () => {
    const { app } = build();
    await put(app, { errorRate: 0.5 });
    let failed = 0;
    for (let i = 0; i < 200; i++) if ((await request(app).get('/content/asset/123')).status === 503) failed++;
    // Binomial(200, 0.5): outside 60..140 once in about 10^8 runs.
    assert.ok(failed > 60 && failed < 140, `${failed} of 200 failed`);
  });

  it('when a delay is set, then business routes wait that long and probes, metrics and the toggles do not', async () => {
    const { app, metrics } = build();
    const delayMs = 5_000;
    await put(app, { delayMs });
    const started = performance.now();
    let held = true;
    const business = request(app)
      .get('/content/asset/123')
      .then((res) => ((held = false), { status: res.status, ms: performance.now() - started }));
    await waitFor(async () => sampleSum(await metrics(), 'faults_injected_total', { kind: 'delay' }) === 1, { what: 'the business request held' });
    // Each answers while the delayed request is still held: they do not wait for the delay.
    for (const [path, authorization] of [['/healthz'], ['/readyz'], ['/metrics'], ['/admin/faults', bearer]] as const) {
      const req = request(app).get(path);
      assert.equal((await (authorization ? req.set('authorization', authorization) : req)).status, 200, path);
      assert.ok(held, `${path} answered only after the delayed request`);
    }
    const delayed = await business;
    assert.equal(delayed.status, 200);
    assert.ok(delayed.ms >= delayMs - 5, `business route took ${delayed.ms} ms`);
    const text = await metrics();
    assert.equal(sampleSum(text, 'faults_active', { kind: 'delay' }), 1);
    assert.equal(sampleSum(text, 'faults_injected_total', { kind: 'delay' }), 1);
  });

  it('when DELETE resets, then every fault is off, the metrics say so and business routes answer at once', async () => {
    const { app, metrics } = build();
    await put(app, { delayMs: 50, jitterMs: 50, errorRate: 1 });
    const reset = await request(app).delete('/admin/faults').set('authorization', bearer);
    assert.equal(reset.status, 200);
    assert.deepEqual(reset.body, { delayMs: 0, jitterMs: 0, errorRate: 0 });
    assert.equal((await request(app).get('/content/asset/123')).status, 200);
    const text = await metrics();
    assert.equal(sampleSum(text, 'faults_active'), 0);
  });

  it('when the service is play, then publishFailRate is one of its faults; when it is queue-listener, pause', async () => {
    const play = build({ kinds: [publishFailure] });
    assert.deepEqual((await request(play.app).get('/admin/faults').set('authorization', bearer)).body, {
      delayMs: 0,
      jitterMs: 0,
      errorRate: 0,
      publishFailRate: 0,
    });
    assert.deepEqual((await put(play.app, { publishFailRate: 1 })).body, { delayMs: 0, jitterMs: 0, errorRate: 0, publishFailRate: 1 });
    assert.equal(play.faults.roll(publishFailure), true);
    assert.equal((await put(play.app, { pause: true })).status, 400);
    assert.equal(sampleSum(await play.metrics(), 'faults_active', { kind: 'publish_fail' }), 1, 'the refused PUT replaced nothing');
    const text = await play.metrics();
    assert.equal(sampleSum(text, 'faults_active', { kind: 'publish_fail' }), 1);
    assert.equal(sampleSum(text, 'faults_injected_total', { kind: 'publish_fail' }), 1);
    await put(play.app, {});
    assert.equal(play.faults.roll(publishFailure), false);

    const listener = build({ kinds: [pauseConsumer] });
    const seen: boolean[] = [];
    listener.faults.watch((settings) => seen.push(settings.pause === true));
    assert.deepEqual((await put(listener.app, { pause: true })).body, { delayMs: 0, jitterMs: 0, errorRate: 0, pause: true });
    await request(listener.app).delete('/admin/faults').set('authorization', bearer);
    assert.deepEqual(seen, [false, true, false]);
    assert.equal((await put(listener.app, { pause: 'yes' })).status, 400);
    assert.equal((await put(listener.app, { publishFailRate: 0.1 })).status, 400);
  });

  it('when no fault is set, then the middleware only hands the request on, at once', (t) => {
    const { faults } = build();
    let calls = 0;
    const random = Math.random;
    Math.random = () => assert.fail('no dice are rolled while every fault is off');
    t.after(() => {
      Math.random = random;
    });
    faults.middleware({ path: '/content/asset/123' } as Request, {} as Response, () => calls++);
    assert.equal(calls, 1, 'next() was called synchronously');
  });
});

describe('FAULTS, the faults a service starts with', () => {
  const load = (value: string, kinds: FaultKind[] = []) => loadConfig(faultsConfigSchema(kinds), { FAULTS: value }).FAULTS;

  it('when FAULTS is unset, then no fault is set', () => {
    assert.equal(loadConfig(faultsConfigSchema([]), {}).FAULTS, undefined);
  });

  it('when FAULTS is the JSON of a PUT, then the service starts with those faults', () => {
    assert.deepEqual(load('{"delayMs":200,"errorRate":0.1}'), { delayMs: 200, jitterMs: 0, errorRate: 0.1 });
    assert.deepEqual(load('{"pause":true}', [pauseConsumer]), { delayMs: 0, jitterMs: 0, errorRate: 0, pause: true });
    const { faults } = ((): { faults: Faults } => {
      const parts = appParts('play');
      return { faults: new Faults({ ...parts, kinds: [publishFailure], initial: load('{"publishFailRate":0.5}', [publishFailure]), auth: faultsAuth(TOKEN) }) };
    })();
    assert.deepEqual(faults.settings, { delayMs: 0, jitterMs: 0, errorRate: 0, publishFailRate: 0.5 });
  });

  for (const [what, value, pattern] of [
    ['not JSON', 'delay=200', /FAULTS=.*must be JSON/],
    ['out of range', '{"errorRate":2}', /FAULTS\.errorRate/],
    ['an unknown key', '{"delay":200}', /FAULTS.*Unrecognized key/],
    ["another service's kind", '{"pause":true}', /FAULTS.*Unrecognized key.*pause/],
  ] as const) {
    it(`when FAULTS is ${what}, then start-up fails with one line naming FAULTS`, () => {
      assert.throws(
        () => load(value),
        (err: unknown) => err instanceof ConfigError && pattern.test(err.message) && !err.message.includes('\n'),
      );
    });
  }
});
