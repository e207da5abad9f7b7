import type { PeerDirectory } from '../discovery';
import type { Logger } from '../log';
import type { Metrics } from '../metrics';
import { hostForUrl, type ConsulClient, type HealthEntry } from './client';
import { repeatUntilStopped } from '../loop';

export interface ConsulDirectoryOptions {
  client: ConsulClient;
  /** Peer name (also its Consul service name) to the URL used when Consul knows nothing. */
  staticUrls: Readonly<Record<string, string>>;
  metrics: Metrics;
  log: Logger;
  /** Longest a blocking query waits for a change; a silently dead connection is noticed after this. */
  waitMs?: number;
  /** Cap of the back-off between failed queries. */
  maxBackoffMs?: number;
}

interface PeerView {
  /** Base URLs of the passing instances; undefined until Consul first answered. */
  urls: string[] | undefined;
  /** False while Consul is unreachable: `urls` is then the last good answer. */
  fresh: boolean;
  turn: number;
  /** Aborts the query in flight so the watch starts over from index 0. */
  restart: AbortController;
}

/**
 * Peers from Consul's health API, passing instances only, kept fresh by one
 * blocking query per peer (no lookup per request). `candidates` rotates the
 * list so calls spread round-robin; the rest of the list is where a safe call
 * retries. The last good list survives a Consul outage; the static URL is
 * used only while no instance is known at all.
 */
export class ConsulDirectory implements PeerDirectory {
  private readonly views = new Map<string, PeerView>();
  private readonly closing = new AbortController();
  private readonly loops: Promise<void>[];

  constructor(private readonly options: ConsulDirectoryOptions) {
    this.loops = Object.keys(options.staticUrls).map((peer) => {
      this.views.set(peer, { urls: undefined, fresh: false, turn: 0, restart: new AbortController() });
      return this.watch(peer);
    });
  }

  candidates(peer: string): string[] {
    const staticUrl = this.options.staticUrls[peer];
    const view = this.views.get(peer);
    if (!staticUrl || !view) throw new Error(`no static URL configured for peer ${peer}`);
    const urls = view.urls;
    if (!urls || urls.length === 0) {
      this.options.metrics.discoveryResolutions.inc({ peer, source: 'static' });
      return [staticUrl];
    }
    this.options.metrics.discoveryResolutions.inc({ peer, source: view.fresh ? 'consul' : 'cache' });
    const start = view.turn % urls.length;
    view.turn = (view.turn + 1) % Number.MAX_SAFE_INTEGER;
    return [...urls.slice(start), ...urls.slice(0, start)];
  }

  /**
   * The local agent restarted (it lost our registration): its index may have
   * started over, and a query blocked on the old index would otherwise wait
   * out its whole `wait` before noticing. Start every watch again now.
   */
  restartWatches(): void {
    for (const view of this.views.values()) view.restart.abort();
  }

  async close(): Promise<void> {
    this.closing.abort();
    for (const view of this.views.values()) view.restart.abort();
    await Promise.all(this.loops);
  }

  private async watch(peer: string): Promise<void> {
    const { client, log } = this.options;
    const waitMs = this.options.waitMs ?? 30_000;
    const closing = this.closing.signal;
    const view = this.views.get(peer);
    if (!view) return;
    let index = 0;
    let failing = false;
    await repeatUntilStopped(
      async () => {
        const asked = Date.now();
        const restart = view.restart;
        try {
          // close() aborts this too: one signal per query, nothing left listening on a long-lived one.
          const answer = await client.passingInstances(peer, { index, waitMs, signal: restart.signal });
          // Documented blocking-query rules: an index that goes backwards (a restarted
          // agent, a restored snapshot) restarts the loop; one below 1 would never block.
          index = answer.index < index ? 0 : Math.max(answer.index, 1);
          const urls = instanceUrls(answer.entries);
          if (failing || !view.fresh || urls.join() !== view.urls?.join()) log.info({ peer, instances: urls }, 'consul peers updated');
          view.urls = urls;
          view.fresh = true;
          failing = false;
          // A query that returned at once without blocking must not become a busy loop.
          return Date.now() - asked < 20 ? 20 : 0;
        } catch (err) {
          if (closing.aborted || !restart.signal.aborted) throw err;
          // restartWatches(): start over from index 0 at once.
          view.restart = new AbortController();
          index = 0;
          return 0;
        }
      },
      {
        signal: closing,
        backoff: { initialMs: 100, maxMs: this.options.maxBackoffMs ?? 5_000 },
        onError: (err) => {
          if (!failing) log.warn({ err, peer, cached: view.urls?.length ?? 0 }, 'consul lookup failed: keeping the last good list');
          failing = true;
          view.fresh = false;
          index = 0;
        },
      },
    );
  }
}

/** Sorted, so a reordered but equal answer does not reset anyone's turn or log a change. */
function instanceUrls(entries: HealthEntry[]): string[] {
  const urls = entries
    // The query asked for passing only; a check listed non-passing anyway is not trusted.
    .filter((e) => (e.Checks ?? []).every((c) => c.Status === 'passing'))
    .map((e) => `http://${hostForUrl(e.Service.Address || e.Node.Address)}:${e.Service.Port}`);
  return [...new Set(urls)].sort();
}
