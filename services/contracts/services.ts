import { peerUrlSchema } from '../platform/config';

/**
 * The five services, written once: the port each listens on by default,
 * whether it keeps data in Postgres, the peers it calls, and whether it holds
 * reporting's record token (reporting checks it, the listener sends it). In start order,
 * each after its peers. The services' configs, the local runner, the bench
 * and the test mesh read it.
 */
export const SERVICES = {
  metadata: { port: 8081, database: true, peers: [], recordToken: false },
  cdnurl: { port: 8083, database: true, peers: [], recordToken: false },
  reporting: { port: 8082, database: true, peers: [], recordToken: true },
  play: { port: 8080, database: false, peers: ['metadata', 'cdnurl', 'reporting'], recordToken: false },
  'queue-listener': { port: 8084, database: false, peers: ['reporting'], recordToken: true },
} as const;

export type ServiceName = keyof typeof SERVICES;
export const SERVICE_NAMES = Object.keys(SERVICES) as [ServiceName, ...ServiceName[]];
type PeerOf<S extends ServiceName> = (typeof SERVICES)[S]['peers'][number];
type PeerUrlVariable<P extends ServiceName> = `${Uppercase<P>}_URL`;

const peersOf = (service: ServiceName): readonly ServiceName[] => SERVICES[service].peers;
const peerUrlVariable = <P extends ServiceName>(peer: P) => `${peer.toUpperCase()}_URL` as PeerUrlVariable<P>;

/** A service's `<PEER>_URL` variables, for its config.ts: each defaults to the peer's port on loopback. */
export function peerUrlsConfig<S extends ServiceName>(service: S) {
  const variables = peersOf(service).map((peer) => [peerUrlVariable(peer), peerUrlSchema(peer, SERVICES[peer].port)]);
  return Object.fromEntries(variables) as { [P in PeerOf<S> as PeerUrlVariable<P>]: ReturnType<typeof peerUrlSchema> };
}

/** The peers' URLs in a config read with peerUrlsConfig, by peer: the static URLs of the service's peer directory. */
export function peerUrls<S extends ServiceName>(service: S, config: { [P in PeerOf<S> as PeerUrlVariable<P>]: string }): Record<PeerOf<S>, string> {
  const urls = config as Record<string, string>;
  return Object.fromEntries(peersOf(service).map((peer) => [peer, urls[peerUrlVariable(peer)]])) as Record<PeerOf<S>, string>;
}

/** The environment that points a service at its peers, for whoever starts it (the test mesh, the bench). */
export function peerUrlEnv(service: ServiceName, urlOf: (peer: ServiceName) => string): Record<string, string> {
  return Object.fromEntries(peersOf(service).map((peer) => [peerUrlVariable(peer), urlOf(peer)]));
}
