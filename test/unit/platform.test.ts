import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import {
  ConfigError,
  checkConfig,
  commonConfigSchema,
  problemText,
  durationMsSchema,
  httpUrlSchema,
  booleanSchema,
  loadConfig,
  portSchema,
} from '../../services/platform/config';
import { natsUrlSchema } from '../../services/platform/nats';
import { configRules as playConfigRules, configSchema as playConfigSchema } from '../../services/play/config';
import { StaticDirectory } from '../../services/platform/discovery';
import { Readiness } from '../../services/platform/health';
import { createLogger } from '../../services/platform/log';
import { createMetrics } from '../../services/platform/metrics';
import { shutDown } from '../../services/platform/shutdown';
import { tolerant } from '../../services/platform/validation';

const schema = commonConfigSchema.extend({
  PORT: portSchema(8081),
  NATS_URL: natsUrlSchema,
  METADATA_URL: httpUrlSchema('http://127.0.0.1:8081'),
  CALL_TIMEOUT_MS: durationMsSchema(800),
});

function configError(env: NodeJS.ProcessEnv, s: z.AnyZodObject = schema): ConfigError {
  try {
    loadConfig(s, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(env)} to be rejected`);
}

describe('loadConfig', () => {
  it('when a boolean variable is anything but true or false, then start-up stops naming it', () => {
    const flags = z.object({ ALLOW_OPEN_WRITES: booleanSchema });
    assert.equal(loadConfig(flags, {}).ALLOW_OPEN_WRITES, false);
    assert.equal(loadConfig(flags, { ALLOW_OPEN_WRITES: 'true' }).ALLOW_OPEN_WRITES, true);
    assert.throws(() => loadConfig(flags, { ALLOW_OPEN_WRITES: 'yes' }), /ALLOW_OPEN_WRITES/);
  });

  it('when the environment is empty, then every default applies', () => {
    const config = loadConfig(schema, {});
    assert.equal(config.PORT, 8081);
    assert.equal(config.HOST, '127.0.0.1');
    assert.equal(config.LOG_LEVEL, 'info');
    assert.equal(config.SHUTDOWN_DRAIN_DELAY_MS, 0);
    assert.equal(config.SHUTDOWN_TIMEOUT_MS, 10_000);
    assert.equal(config.CONSUL_HTTP_ADDR, undefined);
    assert.equal(config.CONSUL_HTTP_TOKEN, undefined);
    assert.deepEqual(config.NATS_URL, { servers: ['127.0.0.1:4222'], user: undefined, pass: undefined, tls: false });
    assert.equal(config.METADATA_URL, 'http://127.0.0.1:8081');
    assert.equal(config.CALL_TIMEOUT_MS, 800);
    assert.equal(config.SERVICE_ADDRESS, undefined, "Consul registration takes the host's address then");
  });

  it('when values are given, then they are parsed to their types', () => {
    const config = loadConfig(schema, { PORT: '9000', LOG_LEVEL: 'debug', CALL_TIMEOUT_MS: '250', SERVICE_ADDRESS: '10.0.0.7' });
    assert.equal(config.PORT, 9000);
    assert.equal(config.LOG_LEVEL, 'debug');
    assert.equal(config.CALL_TIMEOUT_MS, 250);
    assert.equal(config.SERVICE_ADDRESS, '10.0.0.7');
  });

  for (const bad of ['abc', '70000', '-1', '80.5']) {
    it(`when PORT is ${JSON.stringify(bad)}, then a ConfigError names PORT and the value`, () => {
      const err = configError({ PORT: bad });
      assert.match(err.message, /PORT/);
      assert.ok(err.message.includes(JSON.stringify(bad)), err.message);
      assert.equal(err.message.split('\n').length, 1, 'one line');
    });
  }

  it('when LOG_LEVEL is unknown, then the ConfigError names LOG_LEVEL', () => {
    assert.match(configError({ LOG_LEVEL: 'loud' }).message, /LOG_LEVEL="loud"/);
  });

  it('when a peer URL is not http(s), then the ConfigError names it', () => {
    assert.match(configError({ METADATA_URL: 'ftp://metadata:21' }).message, /METADATA_URL/);
    assert.match(configError({ METADATA_URL: 'not a url' }).message, /METADATA_URL/);
  });

  it('when a duration is 0, then the ConfigError names it', () => {
    assert.match(configError({ CALL_TIMEOUT_MS: '0' }).message, /CALL_TIMEOUT_MS/);
  });

  it('when variables are empty strings, then they count as unset and take their defaults', () => {
    const config = loadConfig(schema, { PORT: '', LOG_LEVEL: '', NATS_URL: '', CONSUL_HTTP_ADDR: '', METADATA_URL: '' });
    assert.equal(config.PORT, 8081);
    assert.equal(config.LOG_LEVEL, 'info');
    assert.deepEqual(config.NATS_URL, { servers: ['127.0.0.1:4222'], user: undefined, pass: undefined, tls: false });
    assert.equal(config.CONSUL_HTTP_ADDR, undefined);
    assert.equal(config.METADATA_URL, 'http://127.0.0.1:8081');
  });

  it('when unrelated variables are present, then they are ignored', () => {
    assert.equal(loadConfig(schema, { PATH: '/bin', HOME: '/root', SOMETHING_ELSE: 'x' }).PORT, 8081);
  });

  it('when NATS_URL lists servers separated by commas, then they are split and trimmed', () => {
    const config = loadConfig(schema, { NATS_URL: 'nats://a:4222, nats://b:4222 ,,nats://c:4222' });
    assert.deepEqual(config.NATS_URL, { servers: ['a:4222', 'b:4222', 'c:4222'], user: undefined, pass: undefined, tls: false });
  });

  it("when NATS_URL carries the service's identity, then user and password leave the servers' list, and tls:// asks for TLS", () => {
    const config = loadConfig(schema, { NATS_URL: 'tls://play:s%40cret@a:4222,tls://play:s%40cret@b:4222' });
    assert.deepEqual(config.NATS_URL, { servers: ['a:4222', 'b:4222'], user: 'play', pass: 's@cret', tls: true });
  });

  it('when NATS_URL lists no server (only commas), then a ConfigError names NATS_URL', () => {
    assert.match(configError({ NATS_URL: ' , ' }).message, /NATS_URL/);
  });

  it('when two variables break a rule between them, then start-up stops with one line naming both and their values', () => {
    const load = (env: NodeJS.ProcessEnv) => loadConfig(playConfigSchema, env, playConfigRules);
    assert.throws(
      () => load({ PLAY_DEADLINE_MS: '600' }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /^invalid configuration: PLAY_DEADLINE_MS=600, SHED_EVENT_LOOP_DELAY_MS=500: PLAY_DEADLINE_MS must be below SHED_EVENT_LOOP_DELAY_MS/.test(err.message),
    );
    assert.throws(
      () => load({ SHUTDOWN_DRAIN_DELAY_MS: '10000' }),
      /SHUTDOWN_DRAIN_DELAY_MS=10000, SHUTDOWN_TIMEOUT_MS=10000: SHUTDOWN_DRAIN_DELAY_MS must be below/,
    );
    assert.throws(() => load({ FAULTS: '{"errorRate":1}' }), /FAULTS=.*, FAULTS_ENABLED=false: FAULTS needs FAULTS_ENABLED=true/);
    assert.equal(load({ PLAY_DEADLINE_MS: '600', SHED_EVENT_LOOP_DELAY_MS: '700' }).PLAY_DEADLINE_MS, 600);
  });

  it('when several variables are wrong, then checkConfig names each once, in the order of the schema, and the rules wait until each is valid', () => {
    const checked = checkConfig(playConfigSchema, { PORT: 'x', LOG_LEVEL: 'loud', PLAY_DEADLINE_MS: '600' }, playConfigRules);
    assert.deepEqual(
      checked.problems?.map((p) => p.variables.map((v) => v.name)),
      [['PORT'], ['LOG_LEVEL']],
    );
    assert.equal(problemText(checked.problems[0]!), 'PORT="x": Expected number, received nan');
    const rules = checkConfig(playConfigSchema, { PLAY_DEADLINE_MS: '600', SHUTDOWN_DRAIN_DELAY_MS: '10000' }, playConfigRules);
    assert.deepEqual(
      rules.problems?.map((p) => p.variables.map((v) => v.name)),
      [
        ['SHUTDOWN_DRAIN_DELAY_MS', 'SHUTDOWN_TIMEOUT_MS'],
        ['PLAY_DEADLINE_MS', 'SHED_EVENT_LOOP_DELAY_MS'],
      ],
    );
    assert.equal(checkConfig(playConfigSchema, {}, playConfigRules).config?.PORT, 8080);
  });

  it('when a secret variable is invalid, then the ConfigError names it without echoing the secret', () => {
    const withToken = commonConfigSchema.extend({ ADMIN_TOKEN: z.string().min(8).optional() });
    const err = configError({ ADMIN_TOKEN: 'hunter2' }, withToken);
    assert.match(err.message, /ADMIN_TOKEN/);
    assert.ok(!err.message.includes('hunter2'), err.message);
  });
});

describe('Readiness', () => {
  it('when there are no checks and no draining, then it is ready', () => {
    assert.deepEqual(new Readiness().report(), { ready: true, checks: { accepting: true } });
  });

  it('when every check passes, then it is ready and names each check', () => {
    const r = new Readiness();
    r.addCheck('nats', () => true);
    r.addCheck('consumer', () => true);
    assert.deepEqual(r.report(), { ready: true, checks: { accepting: true, nats: true, consumer: true } });
  });

  it('when draining starts, then it is not ready', () => {
    const r = new Readiness();
    r.addCheck('nats', () => true);
    r.startDraining();
    assert.deepEqual(r.report(), { ready: false, checks: { accepting: false, nats: true } });
  });

  it('when one check fails, then it is not ready', () => {
    const r = new Readiness();
    r.addCheck('nats', () => true);
    r.addCheck('consumer', () => false);
    assert.equal(r.report().ready, false);
  });

  it('when a check throws, then it counts as not ready and report does not throw', () => {
    const r = new Readiness();
    r.addCheck('broken', () => {
      throw new Error('boom');
    });
    assert.deepEqual(r.report(), { ready: false, checks: { accepting: true, broken: false } });
  });

  it('when a check changes state, then the next report follows it', () => {
    let up = false;
    const r = new Readiness();
    r.addCheck('nats', () => up);
    assert.equal(r.report().ready, false);
    up = true;
    assert.equal(r.report().ready, true);
  });
});

describe('shutDown', () => {
  const log = createLogger('shutdown-test', 'silent');

  it('when shutting down, then readiness fails first, steps run in order, and it resolves true', async () => {
    const readiness = new Readiness();
    const order: string[] = [];
    const step = (name: string) => ({
      name,
      run: async () => {
        order.push(`${name}:${readiness.report().ready ? 'ready' : 'draining'}`);
      },
    });
    const finished = await shutDown({
      log,
      readiness,
      first: [step('deregister')],
      drainDelayMs: 0,
      then: [step('http'), step('nats'), step('telemetry')],
      timeoutMs: 1000,
    });
    assert.equal(finished, true);
    assert.deepEqual(order, ['deregister:draining', 'http:draining', 'nats:draining', 'telemetry:draining']);
  });

  it('when a step fails, then the later steps still run', async () => {
    const ran: string[] = [];
    const finished = await shutDown({
      log,
      readiness: new Readiness(),
      first: [],
      drainDelayMs: 0,
      then: [
        { name: 'http', run: async () => void ran.push('http') },
        { name: 'nats', run: async () => Promise.reject(new Error('drain failed')) },
        { name: 'telemetry', run: async () => void ran.push('telemetry') },
      ],
      timeoutMs: 1000,
    });
    assert.equal(finished, true);
    assert.deepEqual(ran, ['http', 'telemetry']);
  });

  it('when a step hangs, then shutdown gives up at the timeout and resolves false', async (t) => {
    // The bound's timer is unref'd on purpose; in a service the server keeps the loop alive, here this does.
    const keepAlive = setInterval(() => {}, 1000);
    t.after(() => clearInterval(keepAlive));
    const started = performance.now();
    const finished = await shutDown({
      log,
      readiness: new Readiness(),
      first: [],
      drainDelayMs: 0,
      then: [{ name: 'stuck', run: () => new Promise<void>(() => {}) }],
      timeoutMs: 150,
    });
    const ms = performance.now() - started;
    assert.equal(finished, false);
    // Not before the bound; the step never ends, so any end at all is the bound's, and 10 s leaves a loaded machine room.
    assert.ok(ms >= 140 && ms < 10_000, `gave up after ${Math.round(ms)} ms`);
  });

  it('when a drain delay is set, then the later steps wait for it', async () => {
    let httpAt = 0;
    const started = performance.now();
    await shutDown({
      log,
      readiness: new Readiness(),
      first: [],
      drainDelayMs: 120,
      then: [{ name: 'http', run: async () => void (httpAt = performance.now() - started) }],
      timeoutMs: 1000,
    });
    assert.ok(httpAt >= 110, `http stopped after ${Math.round(httpAt)} ms`);
  });
});

describe('StaticDirectory', () => {
  it('when a configured peer is asked for, then its one URL is the candidate and the lookup is counted as static', async () => {
    const metrics = createMetrics('dir-test');
    const dir = new StaticDirectory({ metadata: 'http://m:1' }, metrics);
    assert.deepEqual(dir.candidates('metadata'), ['http://m:1']);
    const text = await metrics.registry.metrics();
    assert.match(text, /discovery_resolutions_total\{peer="metadata",source="static",service_name="dir-test"\} 1/);
  });

  it('when an unknown peer is asked for, then it throws naming the peer', () => {
    const dir = new StaticDirectory({}, createMetrics('dir-test'));
    assert.throws(() => dir.candidates('ghost'), /ghost/);
  });
});

describe('tolerant', () => {
  const answer = z.object({ counts: z.array(z.object({ views: z.number().int().nonnegative() }).strict()).min(1) }).strict();

  it('when an answer carries fields the strict schema does not know, at any depth, then the tolerant reading drops them', () => {
    const body = { counts: [{ views: 2, since: '2025' }], page: 1 };
    assert.equal(answer.safeParse(body).success, false);
    assert.deepEqual(tolerant(answer).parse(body), { counts: [{ views: 2 }] });
  });

  it('when an answer breaks a rule of the schema, then the tolerant reading refuses it as the strict one does', () => {
    for (const body of [{ counts: [] }, { counts: [{ views: -1 }] }, { counts: [{}] }, { total: 1 }]) {
      assert.equal(tolerant(answer).safeParse(body).success, false, JSON.stringify(body));
    }
  });
});
