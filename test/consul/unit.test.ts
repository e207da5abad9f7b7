import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, commonConfigSchema, loadConfig } from '../../services/platform/config';
import { consulOrigin, instanceId, serviceRegistration } from '../../services/platform/consul';
import { parseGoDuration } from './consul-double';

test('when CONSUL_HTTP_ADDR is host:port or a URL, then host, port and scheme come from it', () => {
  assert.equal(consulOrigin('127.0.0.1:8500'), 'http://127.0.0.1:8500');
  assert.equal(consulOrigin('consul.consul.svc:8500'), 'http://consul.consul.svc:8500');
  assert.equal(consulOrigin('https://consul:8501/'), 'https://consul:8501');
  assert.equal(consulOrigin('https://consul'), 'https://consul', 'port 443');
  assert.equal(consulOrigin('[fd00::1]:8500'), 'http://[fd00::1]:8500');
});

test('when CONSUL_HTTP_ADDR is not an address, then configuration fails naming the variable', () => {
  assert.throws(
    () => loadConfig(commonConfigSchema, { CONSUL_HTTP_ADDR: 'consul:8500/v1/agent' }),
    (err: unknown) => err instanceof ConfigError && /CONSUL_HTTP_ADDR/.test(err.message),
  );
  assert.throws(
    () => loadConfig(commonConfigSchema, { CONSUL_CHECK_INTERVAL_MS: '200' }),
    (err: unknown) => err instanceof ConfigError && /CONSUL_CHECK_INTERVAL_MS/.test(err.message),
  );
  const defaults = loadConfig(commonConfigSchema, {});
  assert.equal(defaults.CONSUL_HTTP_ADDR, undefined, 'no Consul unless asked');
  assert.equal(defaults.CONSUL_CHECK_INTERVAL_MS, 5_000);
});

test("when the check interval is set, then the check timeout follows it, two misses in a row turn it critical, and the reaping stays at Consul's minute", () => {
  const timing = (intervalMs: number) => {
    const { Interval, Timeout, FailuresBeforeCritical, DeregisterCriticalServiceAfter } = serviceRegistration(
      { name: 'play', address: '10.0.0.1', port: 1, version: 't' },
      intervalMs,
    ).Check;
    return [Interval, Timeout, FailuresBeforeCritical, DeregisterCriticalServiceAfter];
  };
  assert.deepEqual(timing(5_000), ['5000ms', '2000ms', 2, '60000ms']);
  assert.deepEqual(timing(1_000), ['1000ms', '400ms', 2, '60000ms']);
});

test('when the address is IPv6, then the instance id stays path-safe and the check URL brackets the address', () => {
  assert.equal(instanceId({ name: 'play', address: '10.244.1.7', port: 8080 }), 'play-10.244.1.7-8080');
  assert.equal(instanceId({ name: 'play', address: 'fd00::7', port: 8080 }), 'play-fd00--7-8080');
  const registration = serviceRegistration({ name: 'play', address: 'fd00::7', port: 8080, version: '1.2.3' }, 5_000);
  assert.equal(registration.Check.HTTP, 'http://[fd00::7]:8080/healthz');
  assert.deepEqual(
    [registration.Check.Interval, registration.Check.Timeout, registration.Check.DeregisterCriticalServiceAfter],
    ['5000ms', '2000ms', '60000ms'],
  );
  assert.deepEqual([parseGoDuration('5000ms'), parseGoDuration('1m30s'), parseGoDuration('5x')], [5_000, 90_000, undefined]);
});
