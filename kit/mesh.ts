import { NATS_SERVICE_IDENTITIES, type NatsIdentity } from '../services/contracts/nats-rights';
import { SERVICES, peerUrlEnv } from '../services/contracts/services';
import { loopbackCertificate } from './certificates';
import { metricValue, scrape } from './metrics';
import { STORE_SERVICES, startPostgres, type StoreService, type TestPostgres } from './postgres';
import { startNats, startService, type NatsServer, type NatsServiceEnv, type RunningService, type ServiceName } from './processes';
import { waitFor } from './wait';

/** What the mesh needs of a broker: each service's NATS_URL (its own identity; and its CA over TLS), and a way to stop it with the mesh. */
export interface MeshNats {
  url: string;
  env(identity: NatsIdentity): NatsServiceEnv;
  stop(): Promise<void>;
}

/** A service's NATS_URL, as its own identity, and the CA it trusts over TLS; none for a service that does not use NATS. */
export const natsEnvOf = (nats: Pick<MeshNats, 'env'>, name: ServiceName) =>
  (NATS_SERVICE_IDENTITIES as readonly string[]).includes(name) ? nats.env(name as NatsIdentity) : {};

export interface Mesh<N extends MeshNats = NatsServer> {
  nats: N;
  postgres: TestPostgres;
  services: Record<ServiceName, RunningService>;
  urls: { play: string; metadata: string; cdnurl: string; reporting: string; queueListener: string };
  /** Restarts one service on its port, keeping the others; SIGKILL stops it as a crash would. */
  restart(name: ServiceName, signal?: NodeJS.Signals): Promise<RunningService>;
  stop(): Promise<void>;
}

export interface MeshOptions {
  /** Extra environment for every service, or per service. */
  env?: NodeJS.ProcessEnv;
  envFor?: Partial<Record<ServiceName, NodeJS.ProcessEnv>>;
  /** A broker to use instead of the mesh's own nats-server over TLS, such as a NatsCluster; the mesh stops it with itself. */
  nats?: MeshNats;
}

/** The token of the fault toggles, which the test mesh turns on as ./scripts/mesh does. */
export const MESH_FAULTS_TOKEN = 'test-mesh-faults-token';
/** The token of reporting's record routes, which reporting requires and the listener sends. */
export const MESH_RECORD_TOKEN = 'test-mesh-record-token';

/**
 * Play's deadline and shedding bound in the test mesh. Its defaults (450 ms,
 * and shedding past 500 ms of event-loop delay) are a pod's with its own CPU;
 * here every service shares two cores with other test files, where a load
 * average of 20 delays a clean call or the event loop past either, and each
 * pass is a 503 no test asked for. 900 ms still ends a call held by a 1,000 ms
 * fault delay; shedding and deadlines have tests of their own. A test that
 * starts a play of its own beside the mesh gives it these too.
 */
export const PATIENT_EDGE = { PLAY_DEADLINE_MS: '900', SHED_EVENT_LOOP_DELAY_MS: '10000' };

/**
 * The whole mesh as processes: a real nats-server, a real Postgres and the
 * five compiled services on free ports, with the fault toggles on as the
 * local runner has them (FAULTS_TOKEN is MESH_FAULTS_TOKEN). NATS serves
 * only TLS, as the chart's does: the services reach it at tls:// and verify
 * it against the test CA (NODE_EXTRA_CA_CERTS), and so do the test's own
 * clients through `nats.connectOptions()` and `nats.env()`.
 */
export function startMesh(options?: Omit<MeshOptions, 'nats'>): Promise<Mesh>;
export function startMesh<N extends MeshNats>(options: MeshOptions & { nats: N }): Promise<Mesh<N>>;
export async function startMesh(options: MeshOptions = {}): Promise<Mesh<MeshNats>> {
  const [nats, postgres] = await Promise.all([options.nats ?? startNats({ tls: loopbackCertificate() }), startPostgres()]);
  const started: RunningService[] = [];
  try {
    return await startServices(nats, postgres, options, started);
  } catch (err) {
    // A half-started mesh must not keep the test process alive.
    await Promise.all(started.map((s) => s.stop('SIGKILL')));
    await Promise.all([nats.stop(), postgres.remove()]);
    throw err;
  }
}

async function startServices(nats: MeshNats, postgres: TestPostgres, options: MeshOptions, started: RunningService[]): Promise<Mesh<MeshNats>> {
  const track = async (service: Promise<RunningService>) => {
    const running = await service;
    started.push(running);
    return running;
  };
  const envOf = (name: ServiceName, extra: NodeJS.ProcessEnv = {}) => ({
    ...natsEnvOf(nats, name),
    FAULTS_ENABLED: 'true',
    FAULTS_TOKEN: MESH_FAULTS_TOKEN,
    ...(SERVICES[name].recordToken ? { RECORD_TOKEN: MESH_RECORD_TOKEN } : {}),
    ...(isStoreService(name) ? { DATABASE_URL: postgres.urlFor(name) } : {}),
    ...(name === 'play' ? PATIENT_EDGE : {}),
    ...options.env,
    ...options.envFor?.[name],
    ...peerUrlEnv(name, (peer) => services[peer].url),
    ...extra,
  });
  const services = {} as Record<ServiceName, RunningService>;
  const [metadata, cdnurl, reporting] = await allStarted([
    track(startService('metadata', envOf('metadata'))),
    track(startService('cdnurl', envOf('cdnurl'))),
    track(startService('reporting', envOf('reporting'))),
  ]);
  Object.assign(services, { metadata, cdnurl, reporting });
  const [play, listener] = await allStarted([track(startService('play', envOf('play'))), track(startService('queue-listener', envOf('queue-listener')))]);
  services.play = play;
  services['queue-listener'] = listener;
  const mesh: Mesh<MeshNats> = {
    nats,
    postgres,
    services,
    urls: {
      play: play.url,
      metadata: metadata.url,
      cdnurl: cdnurl.url,
      reporting: reporting.url,
      queueListener: listener.url,
    },
    async restart(name, signal = 'SIGTERM') {
      const old = services[name];
      await old.stop(signal);
      const restarted = await startService(name, envOf(name, { PORT: String(old.port) }));
      services[name] = restarted;
      await waitFor(async () => (await fetch(`${restarted.url}/readyz`)).ok, { what: `${name} ready again` });
      return restarted;
    },
    async stop() {
      await Promise.all(Object.values(services).map((s) => s.stop()));
      await Promise.all([nats.stop(), postgres.remove()]);
    },
  };
  await waitFor(async () => (await Promise.all(Object.values(services).map(async (s) => (await fetch(`${s.url}/readyz`)).ok))).every(Boolean), {
    what: 'all five services ready',
  });
  // play is ready without NATS (it can still answer); the tests want its views published.
  await waitFor(async () => metricValue(await scrape(play.url), 'nats_connected') === 1, { what: 'play connected to NATS' });
  return mesh;
}

const isStoreService = (name: ServiceName): name is StoreService => (STORE_SERVICES as readonly string[]).includes(name);

/** Like Promise.all, but waits for every start to settle first, so none is left running unseen. */
async function allStarted<T extends readonly unknown[]>(starts: readonly [...T]): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  await Promise.allSettled(starts);
  return Promise.all(starts);
}
