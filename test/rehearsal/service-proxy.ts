/**
 * A Service as seen from outside the pods, the way kube-proxy forwards it:
 * each new TCP connection goes to one of the endpoints (round robin), an
 * established connection stays with the pod it went to, and with no endpoint
 * a connection is refused. The endpoints are the Service's pods that are
 * ready and not terminating; a change reaches the proxy after a propagation
 * delay, as it reaches kube-proxy and an ingress controller after the
 * endpoints controller has seen it.
 */
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { waitFor } from '../../kit/wait';
import type { RunningPod } from './pods';

/** How long an endpoint change takes to reach the proxy: well inside the services' 5 s drain delay. */
const ENDPOINT_PROPAGATION_MS = 1000;

export class ServiceProxy {
  private endpoints: string[] = [];
  private next = 0;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Connections sent to each endpoint. */
  readonly connectionsTo = new Map<string, number>();

  private constructor(
    readonly service: string,
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(service: string): Promise<ServiceProxy> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (typeof address !== 'object' || !address) throw new Error('proxy has no address');
    const proxy = new ServiceProxy(service, server, address.port);
    server.on('connection', (client: Socket) => proxy.forward(client));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Follows the pods `pods()` lists: each change of one is applied after the propagation delay. */
  follow(pods: () => readonly RunningPod[], port: (pod: RunningPod) => number): void {
    this.snapshot = () =>
      pods()
        .filter((p) => p.serving)
        .map((p) => `${p.ip}:${port(p)}`);
    this.endpoints = this.snapshot();
    for (const pod of pods()) this.watch(pod);
  }

  /** Starts following a pod that `pods()` lists from now on (a rolling update's new pod). */
  watch(pod: RunningPod): void {
    pod.on('change', () => {
      const endpoints = this.snapshot();
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.endpoints = endpoints;
      }, ENDPOINT_PROPAGATION_MS);
      this.timers.add(timer);
    });
  }

  private snapshot: () => string[] = () => [];

  get currentEndpoints(): readonly string[] {
    return this.endpoints;
  }

  /** Resolves once the proxy has at least one endpoint. */
  async hasEndpoints(timeoutMs: number): Promise<void> {
    await waitFor(() => this.endpoints.length > 0, { what: `an endpoint of Service ${this.service}`, timeoutMs });
  }

  private forward(client: Socket): void {
    const endpoints = this.endpoints;
    if (endpoints.length === 0) {
      client.destroy();
      return;
    }
    const endpoint = endpoints[this.next++ % endpoints.length] ?? '';
    this.connectionsTo.set(endpoint, (this.connectionsTo.get(endpoint) ?? 0) + 1);
    const [host = '', port = '0'] = endpoint.split(':');
    const upstream = connect({ host, port: Number(port) });
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      socket.setNoDelay(true);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    // A reset on one side resets the other, as a NAT'd connection would see it.
    client.once('error', () => upstream.destroy());
    upstream.once('error', () => client.destroy());
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.end());
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
