/**
 * OTEL_SDK_DISABLED must switch tracing off entirely, patches included: it is
 * the baseline the telemetry benchmark compares against, and the switch an
 * operator reaches for when tracing is suspected of a problem.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../support/processes';

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
}));
`;

function probe(env: NodeJS.ProcessEnv): { httpPatched: boolean; undiciObserved: boolean } {
  const run = spawnSync(process.execPath, ['-e', PROBE], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as { httpPatched: boolean; undiciObserved: boolean };
}

describe('switching the SDK off', () => {
  it('when OTEL_SDK_DISABLED is unset, then http is patched and undici requests are observed', () => {
    assert.deepEqual(probe({ OTEL_SDK_DISABLED: '' }), { httpPatched: true, undiciObserved: true });
  });

  it('when OTEL_SDK_DISABLED=true, then nothing is patched or observed', () => {
    assert.deepEqual(probe({ OTEL_SDK_DISABLED: 'true' }), { httpPatched: false, undiciObserved: false });
  });
});
