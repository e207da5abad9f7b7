/**
 * Tracing is on only where something exports it, and OTEL_SDK_DISABLED
 * switches it off entirely, patches included: spans nobody exports must not
 * cost a request anything (the telemetry benchmark's "not exported" row), and
 * the switch is what an operator reaches for when tracing is suspected.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../../kit/processes';

const INSTRUMENTATION = join(REPO_ROOT, 'dist', 'services', 'platform', 'instrumentation.js');

// Run in a fresh process: instrumentation patches modules for the life of the process.
const PROBE = `
require(${JSON.stringify(INSTRUMENTATION)});
const http = require('node:http');
const channels = require('node:diagnostics_channel');
const wrapped = (fn) => typeof fn === 'function' && '__wrapped' in fn;
process.stdout.write(JSON.stringify({
  httpPatched: wrapped(http.request) || wrapped(http.Server.prototype.emit),
  undiciObserved: channels.channel('undici:request:create').hasSubscribers,
  sdkLoaded: Object.keys(require.cache).some((path) => path.includes('@opentelemetry/sdk-trace')),
}));
`;

interface Probe {
  httpPatched: boolean;
  undiciObserved: boolean;
  sdkLoaded: boolean;
}

const ENDPOINT = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' };
const NO_ENDPOINT = { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' };

function probe(env: NodeJS.ProcessEnv): Probe {
  const run = spawnSync(process.execPath, ['-e', PROBE], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as Probe;
}

describe('switching tracing on and off', () => {
  it('when an OTLP endpoint is set, then the SDK is loaded, http is patched and undici requests are observed', () => {
    assert.deepEqual(probe({ ...ENDPOINT, OTEL_SDK_DISABLED: '' }), { httpPatched: true, undiciObserved: true, sdkLoaded: true });
  });

  it('when only the traces endpoint is set, then tracing is on too', () => {
    assert.deepEqual(probe({ ...NO_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }), {
      httpPatched: true,
      undiciObserved: true,
      sdkLoaded: true,
    });
  });

  it('when no endpoint is set, then the SDK is not even loaded and nothing is patched or observed', () => {
    assert.deepEqual(probe({ ...NO_ENDPOINT, OTEL_SDK_DISABLED: '' }), { httpPatched: false, undiciObserved: false, sdkLoaded: false });
  });

  it('when OTEL_SDK_DISABLED=true, then nothing is loaded, patched or observed even with an endpoint', () => {
    assert.deepEqual(probe({ ...ENDPOINT, OTEL_SDK_DISABLED: 'true' }), { httpPatched: false, undiciObserved: false, sdkLoaded: false });
  });
});

const SERVER = join(REPO_ROOT, 'dist', 'services', 'platform', 'server.js');

// A service's server with tracing on: each request's handler says whether the
// context manager bound its emitters (what the http instrumentation does to a
// request it takes, wrapping every listener added to it).
const SERVED = `
require(${JSON.stringify(INSTRUMENTATION)});
const { startHttpServer } = require(${JSON.stringify(SERVER)});
const seen = {};
startHttpServer((req, res) => {
  seen[req.url] = Object.getOwnPropertySymbols(req).some((s) => s.description === 'OtListeners');
  res.end();
}, 0, '127.0.0.1').then(async (server) => {
  const trace = (flags) => ({ traceparent: '00-' + '1'.repeat(32) + '-' + '2'.repeat(16) + '-' + flags });
  for (const [path, headers] of [['/sampled', trace('01')], ['/unsampled', trace('00')], ['/healthz', trace('01')]]) {
    await fetch('http://127.0.0.1:' + server.port + path, { method: 'POST', headers });
  }
  process.stdout.write(JSON.stringify(seen));
  process.exit(0);
});
`;

describe('requests tracing leaves alone', () => {
  it('when tracing is on, then an unsampled request and a probe reach the app past the http instrumentation, with nothing bound, and a sampled one is instrumented', () => {
    const run = spawnSync(process.execPath, ['-e', SERVED], { env: { ...process.env, ...ENDPOINT, OTEL_SDK_DISABLED: '' }, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { '/sampled': true, '/unsampled': false, '/healthz': false });
  });
});
