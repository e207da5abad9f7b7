import type { Metrics } from './metrics';

/**
 * Where to reach a peer. `candidates` lists base URLs in the order to try
 * them: the first is the balanced pick, the rest are other instances a safe
 * call may retry on. It is never empty: the static URL is the last resort.
 */
export interface PeerDirectory {
  candidates(peer: string): string[];
  close(): Promise<void>;
}

/**
 * Static URLs only: the local default, and what runs without Consul. With
 * CONSUL_HTTP_ADDR, run-service hands out a ConsulDirectory (consul/directory.ts)
 * instead, which falls back to these same URLs while it knows no instance.
 */
export class StaticDirectory implements PeerDirectory {
  constructor(
    private readonly staticUrls: Readonly<Record<string, string>>,
    private readonly metrics: Metrics,
  ) {}

  candidates(peer: string): string[] {
    const url = this.staticUrls[peer];
    if (!url) throw new Error(`no static URL configured for peer ${peer}`);
    this.metrics.discoveryResolutions.inc({ peer, source: 'static' });
    return [url];
  }

  async close(): Promise<void> {}
}
