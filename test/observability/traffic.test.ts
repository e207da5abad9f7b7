import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { UsageError } from '../../scripts/args';
import { classifyAnswer, formatProgress, parseArgs, parseAssets, pickWeighted, playPath, Reservoir, runTraffic } from '../../scripts/traffic';

describe('traffic flags', () => {
  it('when nothing is given, then the defaults target a local play at 20/s for 60s', () => {
    assert.deepEqual(parseArgs([], {}), {
      url: 'http://127.0.0.1:8080',
      rate: 20,
      durationSeconds: 60,
      assets: [
        { id: '123', weight: 5 },
        { id: '456', weight: 3 },
        { id: 'ghost', weight: 1 },
      ],
      users: 50,
      concurrency: 100,
    });
  });

  it('when flags and environment are both given, then flags win over the environment', () => {
    const options = parseArgs(['--rate', '5', '--duration=0', '--url', 'http://play.local:9000/'], {
      TRAFFIC_RATE: '50',
      TRAFFIC_USERS: '7',
      TRAFFIC_URL: 'http://ignored:1',
    });
    assert.equal(options?.rate, 5);
    assert.equal(options?.durationSeconds, 0);
    assert.equal(options?.users, 7);
    assert.equal(options?.url, 'http://play.local:9000');
  });

  it('when --help is given, then no options are returned', () => {
    assert.equal(parseArgs(['--rate', '1', '--help']), undefined);
  });

  const rejected: [string[], Record<string, string>, RegExp][] = [
    [['--rate', '0'], {}, /--rate must be a number from 0\.01/],
    [['--rate', 'fast'], {}, /--rate must be a number/],
    [[], { TRAFFIC_RATE: '-3' }, /TRAFFIC_RATE must be a number/],
    [['--duration', '-1'], {}, /--duration must be a number from 0/],
    [['--users', '2.5'], {}, /--users must be a whole number/],
    [['--concurrency', '0'], {}, /--concurrency must be a whole number from 1/],
    [['--url', 'ftp://x'], {}, /--url must be an http or https URL/],
    [['--url', 'not a url'], {}, /--url must be a URL/],
    [['--rate'], {}, /--rate needs a value/],
    [['--rate', '--users', '3'], {}, /--rate needs a value/],
    [['--speed', '3'], {}, /unknown argument "--speed"/],
    [['extra'], {}, /unknown argument "extra"/],
    [['--assets', '123:0'], {}, /weight of 123 must be a whole number of at least 1/],
    [['--assets', 'a b:1'], {}, /"a b:1" is not id\[:weight\]/],
    [['--assets', ','], {}, /--assets lists no asset/],
    [[], { TRAFFIC_ASSETS: '1:2:3' }, /TRAFFIC_ASSETS: "1:2:3" is not id\[:weight\]/],
  ];
  for (const [argv, env, message] of rejected) {
    it(`when given ${JSON.stringify(argv)} ${JSON.stringify(env)}, then a UsageError names the bad input`, () => {
      assert.throws(
        () => parseArgs(argv, env),
        (error: unknown) => error instanceof UsageError && message.test(error.message),
      );
    });
  }

  it('when an asset has no weight, then it weighs 1', () => {
    assert.deepEqual(parseAssets(' 123:2 , ghost '), [
      { id: '123', weight: 2 },
      { id: 'ghost', weight: 1 },
    ]);
  });
});

describe('weighted pick', () => {
  const items = [
    { id: 'a', weight: 5 },
    { id: 'b', weight: 3 },
    { id: 'c', weight: 2 },
  ];

  it('when random spans 0..1, then each item gets its share of the weight', () => {
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 1000; i++) {
      const picked = pickWeighted(items, i / 1000).id;
      counts[picked] = (counts[picked] ?? 0) + 1;
    }
    assert.deepEqual(counts, { a: 500, b: 300, c: 200 });
  });

  it('when random sits on the edges, then the first and last items are picked', () => {
    assert.equal(pickWeighted(items, 0).id, 'a');
    assert.equal(pickWeighted(items, 0.999999).id, 'c');
  });

  it('when there is nothing to pick from, then it throws', () => {
    assert.throws(() => pickWeighted([], 0.5), RangeError);
  });
});

describe('reservoir', () => {
  it('when more values arrive than it holds, then it keeps exactly its capacity', () => {
    const reservoir = new Reservoir(10, () => 0.5);
    for (let i = 0; i < 1000; i++) reservoir.add(i);
    assert.equal(reservoir.values.length, 10);
  });
});

describe('answers', () => {
  it('when play answers 200 with a degraded list, then it counts as ok and degraded', () => {
    assert.deepEqual(classifyAnswer(200, { degraded: ['cdnurl'] }), { kind: 'ok', degraded: true });
    assert.deepEqual(classifyAnswer(200, { degraded: [] }), { kind: 'ok', degraded: false });
    assert.deepEqual(classifyAnswer(200, undefined), { kind: 'ok', degraded: false });
  });

  it('when play answers 404 or something else, then it is not_found or other with the status', () => {
    assert.deepEqual(classifyAnswer(404, {}), { kind: 'not_found' });
    assert.deepEqual(classifyAnswer(503, {}), { kind: 'other', label: '503' });
  });

  it('when ids are put in a path, then they are encoded', () => {
    assert.equal(playPath('123', 'user-1'), '/play/asset/123/user/user-1');
    assert.equal(playPath('a/b', 'u'), '/play/asset/a%2Fb/user/u');
  });

  it('when progress is formatted, then the counters and quantiles are on one line', () => {
    const line = formatProgress({
      elapsedSeconds: 3,
      sent: 10,
      ok: 7,
      notFound: 2,
      errors: 1,
      degraded: 1,
      skipped: 0,
      otherOutcomes: { '503': 1 },
      p50Ms: 1.23,
      p95Ms: undefined,
    });
    assert.equal(line, 't=3s sent=10 ok=7 404=2 errors=1 (503:1) degraded=1 p50=1.2ms p95=-');
  });
});

describe('runTraffic against a fake play', () => {
  it('when run for a short while, then it sends at the rate and counts each kind of answer', async (t) => {
    const paths: string[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      paths.push(`${req.method ?? ''} ${req.url ?? ''}`);
      const asset = /^\/play\/asset\/([^/]+)\//.exec(req.url ?? '')?.[1];
      res.setHeader('content-type', 'application/json');
      if (asset === 'ghost') {
        res.statusCode = 404;
        res.end(JSON.stringify({ id: asset, status: 'Asset not found' }));
      } else {
        res.end(JSON.stringify({ id: asset, degraded: asset === '456' ? ['cdnurl'] : [] }));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))));
    const { port } = server.address() as AddressInfo;
    const progress: number[] = [];
    const summary = await runTraffic(
      { url: `http://127.0.0.1:${port}`, rate: 50, durationSeconds: 1.2, assets: parseAssets('123:1,456:1,ghost:1'), users: 3, concurrency: 10 },
      { onProgress: (p) => progress.push(p.sent) },
    );
    // 1.2s at 50/s; a stalled event loop may burst past the cap, and those are skipped, not lost.
    assert.equal(summary.sent + summary.skipped, 60);
    assert.equal(summary.ok + summary.notFound + summary.errors, summary.sent);
    assert.equal(summary.errors, 0);
    assert.ok(summary.notFound > 0 && summary.degraded > 0 && summary.ok > summary.degraded);
    assert.ok(summary.p50Ms !== undefined && summary.p95Ms !== undefined && summary.p99Ms !== undefined);
    assert.ok(progress.length >= 1, 'progress is reported once a second');
    assert.ok(
      paths.every((line) => /^POST \/play\/asset\/(123|456|ghost)\/user\/user-[1-3]$/.test(line)),
      paths.join('\n'),
    );
  });

  it('when answers are slower than the concurrency cap allows, then due requests are skipped, not queued', async (t) => {
    // Answers after the ten requests of the run fell due, even on a loaded machine (and within the client's 5 s).
    const server = createServer((_req: IncomingMessage, res: ServerResponse) => {
      setTimeout(() => res.end('{}'), 3000);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    });
    const { port } = server.address() as AddressInfo;
    const summary = await runTraffic({
      url: `http://127.0.0.1:${port}`,
      rate: 50,
      durationSeconds: 0.2,
      assets: parseAssets('123'),
      users: 1,
      concurrency: 1,
    });
    assert.equal(summary.sent, 1);
    assert.equal(summary.skipped, 9);
    assert.equal(summary.ok, 1);
  });

  it('when aborted, then it stops scheduling and returns what it counted', async () => {
    const stop = new AbortController();
    const rate = 20;
    const started = performance.now();
    let abortedAfterMs = 0;
    setTimeout(() => {
      abortedAfterMs = performance.now() - started;
      stop.abort();
    }, 200);
    // Nothing listens on port 9: every request fails fast, which the summary counts as network errors.
    const summary = await runTraffic(
      { url: 'http://127.0.0.1:9', rate, durationSeconds: 0, assets: parseAssets('123'), users: 1, concurrency: 5 },
      { signal: stop.signal },
    );
    // What fell due until the abort (the first at once), however late a loaded machine ran it: nothing after.
    const dueAtAbort = Math.floor((abortedAfterMs / 1000) * rate) + 1;
    assert.ok(summary.sent >= 1 && summary.sent <= dueAtAbort, `sent ${summary.sent}, ${dueAtAbort} due when aborted after ${Math.round(abortedAfterMs)} ms`);
    assert.equal(summary.errors, summary.sent);
    assert.equal(summary.otherOutcomes['network'], summary.sent);
  });
});
