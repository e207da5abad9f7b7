/**
 * The floor's play: the catalog cached (30 s, "not found" 2 s, as the mesh's
 * play), the counts of the plays of one turn asked of reporting in one call,
 * the view events of one turn published together (one write) with
 * `Nats-Msg-Id`, each play answered once JetStream acknowledged its event.
 * node:http and the NATS client, nothing else.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { connectOptionsOf, natsUrlSchema } from '../../services/platform/nats';
import { answer, peer, portFromEnv, requiredEnv } from './http';
import { ensureFloorStream, FLOOR_VIEW_SUBJECT } from './stream';
import { inTurns } from './turns';

const CATALOG_TTL_MS = 30_000;
const NOT_FOUND_TTL_MS = 2_000;
const PLAY = /^\/play\/asset\/([\w-]{1,64})\/user\/([\w-]{1,64})$/;

interface Asset {
  title: string;
  genre: string;
  summary: string;
  url: string | null;
}
interface Counts {
  assetviews: number;
  userviews: number;
}

const reporting = peer(requiredEnv('REPORTING_URL'));
const connected = connect({ ...connectOptionsOf(natsUrlSchema.parse(requiredEnv('NATS_URL'))), noAsyncTraces: true });
const js = connected.then(async (nc) => {
  await ensureFloorStream(await jetstreamManager(nc));
  return jetstream(nc);
});

const catalog = new Map<string, { asset: Promise<Asset | undefined>; until: number }>();
function lookupAsset(assetId: string): Promise<Asset | undefined> {
  const now = Date.now();
  const cached = catalog.get(assetId);
  if (cached && cached.until > now) return cached.asset;
  const asset = reporting('GET', `/catalog/${assetId}`).then(({ status, body }) => {
    if (status === 404) return undefined;
    if (status !== 200) throw new Error(`catalog answered ${status}`);
    return body as Asset;
  });
  const entry = { asset, until: now + CATALOG_TTL_MS };
  catalog.set(assetId, entry);
  // Failures are not kept; "not found" only briefly.
  asset.then(
    (found) => found === undefined && (entry.until = Date.now() + NOT_FOUND_TTL_MS),
    () => catalog.delete(assetId),
  );
  return asset;
}

const countsOf = inTurns(async (plays: Array<{ assetId: string; userId: string }>): Promise<Counts[]> => {
  const { status, body } = await reporting('POST', '/counts', { plays });
  const counts = (body as { counts?: Counts[] } | undefined)?.counts;
  if (status !== 200 || counts?.length !== plays.length) throw new Error(`counts answered ${status}`);
  return counts;
});

const publish = inTurns(async (events: Array<{ eventId: string; assetId: string; userId: string; occurredAt: string }>) => {
  const client = await js;
  return Promise.all(events.map((event) => client.publish(FLOOR_VIEW_SUBJECT, JSON.stringify(event), { msgID: event.eventId })));
});

async function play(assetId: string, userId: string) {
  const counts = countsOf({ assetId, userId });
  const asset = await lookupAsset(assetId);
  if (!asset) {
    counts.catch(() => undefined);
    return undefined;
  }
  const published = publish({ eventId: randomUUID(), assetId, userId, occurredAt: new Date().toISOString() });
  const [views] = await Promise.all([counts, published]);
  return { id: assetId, ...asset, ...views, degraded: [], recorded: true };
}

const server = createServer({ keepAlive: true }, (req, res) => {
  const ids = req.method === 'POST' ? PLAY.exec(req.url ?? '') : null;
  if (!ids) return answer(res, 404, { error: 'no route' });
  // No body to read: the request is done once its headers are.
  req.resume();
  play(ids[1]!, ids[2]!).then(
    (playback) => (playback ? answer(res, 200, playback) : answer(res, 404, { error: 'asset not found' })),
    (err: unknown) => {
      console.error(err);
      answer(res, 503, { error: 'unavailable' });
    },
  );
});

// Listening once the stream is there: the bench waits for the port.
void js.then(() => server.listen(portFromEnv(), '127.0.0.1'));
process.on('SIGTERM', () => {
  server.close();
  server.closeIdleConnections();
  void connected.then((nc) => nc.drain());
});
