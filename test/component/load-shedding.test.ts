import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { createApp as createPlayApp } from '../../services/play/app';
import type { PeerClient } from '../../services/platform/peer-client';
import { EventLoopLag } from '../../services/play/load-shedding';
import { metricValue } from '../../kit/metrics';
import { waitFor } from '../../kit/wait';
import { appParts, assertErrorShape } from './support';

const answering: PeerClient = {
  call: async (_method, path, req) => ({
    status: 200,
    headers: {},
    body: path.startsWith('/content')
      ? { title: 'It', genre: 'horror', summary: 's' }
      : path.startsWith('/url')
        ? { url: 'u.mp4' }
        : { counts: (req?.json as { plays: unknown[] }).plays.map(() => ({ assetviews: 0, userviews: 0 })) },
  }),
  close: async () => {},
};

function playWith(lagMs: () => number, maxInFlight = 100, backend: PeerClient = answering) {
  const parts = appParts('play');
  const backends = { metadata: backend, cdnurl: answering, reporting: answering };
  return {
    ...parts,
    app: createPlayApp({ backends, publishView: async () => true, deadlineMs: 450, shedding: { lagMs, boundMs: 50, maxInFlight }, ...parts }),
  };
}

describe('play sheds load when its event loop lags', () => {
  it('when the lag is above the bound, then plays answer 503 with Retry-After at once, and probes still answer', async () => {
    let lag = 0;
    const { app } = playWith(() => lag);
    await request(app).post('/play/asset/123/user/u').expect(200);
    lag = 80;
    const shed = await request(app).post('/play/asset/123/user/u').expect(503);
    assertErrorShape(shed.body, 'overloaded');
    assert.equal(shed.headers['retry-after'], '1');
    await request(app).get('/healthz').expect(200);
    await request(app).get('/readyz').expect(200);
    assert.equal(metricValue((await request(app).get('/metrics')).text, 'http_server_shed_total', { reason: 'event_loop_lag' }), 1);
    lag = 10;
    await request(app).post('/play/asset/123/user/u').expect(200);
  });

  it('when as many plays as the bound are in progress, then the next is shed at once and a later one is served', async (t) => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let metadataCalls = 0;
    const slowMetadata: PeerClient = {
      call: async (method, path, options) => (metadataCalls++, await held, answering.call(method, path, options)),
      close: async () => {},
    };
    const { app } = playWith(() => 0, 2, slowMetadata);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/play/asset/123/user/u`;
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    const first = [fetch(url, { method: 'POST' }), fetch(url, { method: 'POST' })];
    await waitFor(() => metadataCalls === 2, { what: 'both plays in progress' });
    const third = await fetch(url, { method: 'POST' });
    assert.equal(third.status, 503);
    assert.equal(((await third.json()) as { error: string }).error, 'overloaded');
    // At once, not after a wait: answered while the two it was shed for are still held, and without asking a peer.
    assert.equal(metadataCalls, 2, 'shed before any work');
    release();
    assert.deepEqual(await Promise.all(first.map(async (r) => (await r).status)), [200, 200]);
    assert.equal((await fetch(url, { method: 'POST' })).status, 200);
  });

  it('when the event loop is really blocked, then the lag sampler sees it and the next play is shed', async (t) => {
    const lag = new EventLoopLag().start();
    t.after(() => lag.stop());
    const { app } = playWith(() => lag.currentMs);
    // A loaded machine lags by itself now and then: first a play served while the loop keeps up.
    await waitFor(async () => (await request(app).post('/play/asset/123/user/u')).status === 200, { what: 'a play served' });
    const until = performance.now() + 400;
    while (performance.now() < until) {
      // a busy loop: what a saturated process looks like to its timers
    }
    // Timers run before the next I/O: the sampler has seen the stall when the play arrives.
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.ok(lag.currentMs > 50, `sampled lag ${lag.currentMs.toFixed(1)} ms`);
    // Held where it saw the stall: a play that queued during it finds that reading, while this
    // one arrives a few samples later, after the smoothing may have let it down below the bound.
    lag.stop();
    await request(app).post('/play/asset/123/user/u').expect(503);
  });
});
