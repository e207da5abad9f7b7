import { startNats, startService, type NatsServer, type RunningService, type ServiceName } from './processes';
import { waitFor } from './wait';

export interface Mesh {
  nats: NatsServer;
  services: Record<ServiceName, RunningService>;
  urls: { play: string; metadata: string; cdnurl: string; reporting: string; queueListener: string };
  /** Restarts one service on its port, keeping the others. */
  restart(name: ServiceName): Promise<RunningService>;
  stop(): Promise<void>;
}

export interface MeshOptions {
  /** Extra environment for every service, or per service. */
  env?: NodeJS.ProcessEnv;
  envFor?: Partial<Record<ServiceName, NodeJS.ProcessEnv>>;
}

/** The whole mesh as processes: a real nats-server and the five compiled services on free ports. */
export async function startMesh(options: MeshOptions = {}): Promise<Mesh> {
  const nats = await startNats();
  const started: RunningService[] = [];
  try {
    return await startServices(nats, options, started);
  } catch (err) {
    // A half-started mesh must not keep the test process alive.
    await Promise.all(started.map((s) => s.stop('SIGKILL')));
    await nats.stop();
    throw err;
  }
}

async function startServices(nats: NatsServer, options: MeshOptions, started: RunningService[]): Promise<Mesh> {
  const track = async (service: Promise<RunningService>) => {
    const running = await service;
    started.push(running);
    return running;
  };
  const envOf = (name: ServiceName, extra: NodeJS.ProcessEnv = {}) => ({
    NATS_URL: nats.url,
    ...options.env,
    ...options.envFor?.[name],
    ...extra,
  });
  const services = {} as Record<ServiceName, RunningService>;
  const [metadata, cdnurl, reporting] = await allStarted([
    track(startService('metadata', envOf('metadata'))),
    track(startService('cdnurl', envOf('cdnurl'))),
    track(startService('reporting', envOf('reporting'))),
  ]);
  Object.assign(services, { metadata, cdnurl, reporting });
  const peers = { METADATA_URL: metadata.url, CDNURL_URL: cdnurl.url, REPORTING_URL: reporting.url };
  const [play, listener] = await allStarted([
    track(startService('play', envOf('play', peers))),
    track(startService('queue-listener', envOf('queue-listener', { REPORTING_URL: reporting.url }))),
  ]);
  services.play = play;
  services['queue-listener'] = listener;
  const mesh: Mesh = {
    nats,
    services,
    urls: {
      play: play.url,
      metadata: metadata.url,
      cdnurl: cdnurl.url,
      reporting: reporting.url,
      queueListener: listener.url,
    },
    async restart(name) {
      const old = services[name];
      await old.stop();
      const extra = name === 'play' ? peers : name === 'queue-listener' ? { REPORTING_URL: reporting.url } : {};
      services[name] = await startService(name, envOf(name, { ...extra, PORT: String(old.port) }));
      return services[name];
    },
    async stop() {
      await Promise.all(Object.values(services).map((s) => s.stop()));
      await nats.stop();
    },
  };
  await waitFor(async () => (await fetch(`${play.url}/readyz`)).ok && (await fetch(`${listener.url}/readyz`)).ok, {
    what: 'play and queue-listener ready',
  });
  return mesh;
}

/** Like Promise.all, but waits for every start to settle first, so none is left running unseen. */
async function allStarted<T extends readonly unknown[]>(starts: readonly [...T]): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  await Promise.allSettled(starts);
  return Promise.all(starts);
}
