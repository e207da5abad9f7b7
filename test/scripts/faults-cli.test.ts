import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Router } from 'express';
import { Faults, faultsAuth } from '../../services/platform/faults';
import { createHttpApp } from '../../services/platform/http';
import { UsageError } from '../../scripts/args';
import { parseArgs, run, type Options } from '../../scripts/faults';
import { appParts, listen, type Listening } from '../component/support';

const TOKEN = 'cli-admin-token-0123456789';

describe('npm run faults: the command line', () => {
  it('when settings are named, then they become the PUT body of that service, on its local port', () => {
    assert.deepEqual(parseArgs(['cdnurl', 'delay=2000', 'errors=0.2']), {
      command: { kind: 'set', service: 'cdnurl', body: { delayMs: 2000, errorRate: 0.2 } },
      url: undefined,
    });
    assert.deepEqual(parseArgs(['queue-listener', 'pause'])?.command, { kind: 'set', service: 'queue-listener', body: { pause: true } });
    assert.deepEqual(parseArgs(['play', 'publish=0.5', 'jitter=100'])?.command, {
      kind: 'set',
      service: 'play',
      body: { publishFailRate: 0.5, jitterMs: 100 },
    });
  });

  it('when a service, off, status or reset is given alone, then it reads or resets', () => {
    assert.deepEqual(parseArgs(['metadata'])?.command, { kind: 'show', services: ['metadata'] });
    assert.deepEqual(parseArgs(['metadata', 'off'])?.command, { kind: 'reset', services: ['metadata'] });
    assert.deepEqual(parseArgs(['reset'])?.command, { kind: 'reset', services: ['play', 'metadata', 'reporting', 'cdnurl', 'queue-listener'] });
    assert.deepEqual(parseArgs(['status'])?.command.kind, 'show');
  });

  it('when --url is given, then every request goes there', () => {
    assert.equal(parseArgs(['--url', 'http://127.0.0.1:18083/', 'cdnurl', 'delay=1'])?.url, 'http://127.0.0.1:18083');
    assert.equal(parseArgs(['cdnurl', '--url=http://localhost:9'])?.url, 'http://localhost:9');
  });

  for (const [what, argv] of [
    ['nothing', []],
    ['an unknown service', ['catalog', 'delay=1']],
    ['an unknown setting', ['cdnurl', 'latency=1']],
    ['a value that is not a number', ['cdnurl', 'delay=slow']],
    ['an empty value', ['cdnurl', 'errors=']],
    ['settings after reset', ['reset', 'delay=1']],
    ['a URL with a path', ['--url', 'http://127.0.0.1:8083/admin', 'cdnurl']],
    ['an unknown option', ['--force', 'cdnurl']],
  ] as const) {
    it(`when given ${what}, then it is a usage error`, () => {
      assert.throws(() => parseArgs(argv), UsageError);
    });
  }

  it('when asked for help, then there are no options to run', () => {
    assert.equal(parseArgs(['--help']), undefined);
  });
});

describe('npm run faults against a service', () => {
  let service: Listening;
  let faults: Faults;

  before(async () => {
    const parts = appParts('cdnurl');
    faults = new Faults({ ...parts, auth: faultsAuth(TOKEN) });
    service = await listen(createHttpApp({ ...parts, routes: Router(), faults }));
  });
  after(async () => {
    await service?.close();
  });

  const capture = async (options: Options, env: NodeJS.ProcessEnv) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await run(options, env, { out: (line) => out.push(line), err: (line) => err.push(line) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };

  it('when ADMIN_TOKEN is set, then the faults are set, shown and reset, and each answer is printed', async () => {
    const set = await capture(parseArgs(['--url', service.url, 'cdnurl', 'delay=2000', 'errors=0.2'])!, { ADMIN_TOKEN: TOKEN });
    assert.equal(set.code, 0, set.err);
    assert.equal(set.out, 'cdnurl: {"delayMs":2000,"jitterMs":0,"errorRate":0.2}');
    assert.deepEqual(faults.settings, { delayMs: 2000, jitterMs: 0, errorRate: 0.2 });
    const reset = await capture(parseArgs(['--url', service.url, 'reset'])!, { ADMIN_TOKEN: TOKEN });
    assert.equal(reset.code, 0, reset.err);
    assert.deepEqual(faults.settings, { delayMs: 0, jitterMs: 0, errorRate: 0 });
  });

  it('when FAULTS_TOKEN is set, then it is the one sent, before ADMIN_TOKEN', async () => {
    const set = await capture(parseArgs(['--url', service.url, 'cdnurl', 'errors=0.5'])!, { FAULTS_TOKEN: TOKEN, ADMIN_TOKEN: 'not-the-faults-token' });
    assert.equal(set.code, 0, set.err);
    assert.equal(faults.settings.errorRate, 0.5);
    await capture(parseArgs(['--url', service.url, 'reset'])!, { FAULTS_TOKEN: TOKEN });
  });

  it('when no token is set, then it exits 1 saying where the token comes from, and nothing changes', async () => {
    const refused = await capture(parseArgs(['--url', service.url, 'cdnurl', 'errors=1'])!, {});
    assert.equal(refused.code, 1);
    assert.match(refused.err, /answered 401 .*set FAULTS_TOKEN, or ADMIN_TOKEN/);
    assert.equal(faults.settings.errorRate, 0);
  });

  it('when the service has no fault toggles (FAULTS_ENABLED unset), then it exits 1 saying how to turn them on', async (t) => {
    const plain = await listen(createHttpApp({ ...appParts('cdnurl'), routes: Router() }));
    t.after(() => plain.close());
    const missing = await capture(parseArgs(['--url', plain.url, 'cdnurl'])!, { FAULTS_TOKEN: TOKEN });
    assert.equal(missing.code, 1);
    assert.match(missing.err, /answered 404 .*FAULTS_ENABLED=true/);
  });

  it("when the service refuses a value, then it exits 1 with the service's reason", async () => {
    const refused = await capture(parseArgs(['--url', service.url, 'cdnurl', 'errors=2'])!, { ADMIN_TOKEN: TOKEN });
    assert.equal(refused.code, 1);
    assert.match(refused.err, /answered 400 .*errorRate/);
  });

  it('when nothing listens, then it exits 1 naming the URL', async () => {
    const down = await capture(parseArgs(['--url', 'http://127.0.0.1:9', 'cdnurl'])!, { ADMIN_TOKEN: TOKEN });
    assert.equal(down.code, 1);
    assert.match(down.err, /http:\/\/127\.0\.0\.1:9\/admin\/faults failed/);
  });
});
