import { Agent, request } from 'undici';
import { SERVICE_NAMES, type ServiceName } from '../contracts/services';
import type { Logger } from '../platform/log';
import { DONE, repeatUntilStopped } from '../platform/loop';
import { parseSamples } from '../platform/prometheus-text';
import type { Scrape, Window } from './graph';

/** One scrape of each service a second: five small GETs a second, the whole cost of an open console to the mesh. */
export const SCRAPE_EVERY_MS = 1_000;
/** Rates and p95s are over the last five seconds: long enough to hold a play a human clicked, short enough to follow a switch. */
export const WINDOW_SCRAPES = 5;
const SCRAPE_TIMEOUT_MS = 800;

const reason = (err: unknown) => (err instanceof Error ? ((err.cause instanceof Error ? err.cause.message : undefined) ?? err.message) : String(err));

/**
 * Reads every service's own /metrics once a second and keeps the last few
 * scrapes of each: the window the graph's rates are taken over. It asks
 * for the classic text format, which carries no exemplars to skip.
 */
export class Scraper {
  private readonly history = new Map<ServiceName, Scrape[]>(SERVICE_NAMES.map((name) => [name, []]));
  private readonly agent = new Agent({ keepAliveTimeout: 10_000, connections: 2 });
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly urls: Record<ServiceName, string>,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.loop = repeatUntilStopped(
      async () => {
        await this.scrapeAll();
        return this.stopping.signal.aborted ? DONE : SCRAPE_EVERY_MS;
      },
      {
        signal: this.stopping.signal,
        backoff: { initialMs: SCRAPE_EVERY_MS, maxMs: SCRAPE_EVERY_MS },
        onError: (err) => this.log.warn({ err }, 'scrape round failed'),
      },
    );
  }

  /** The window of each service; undefined until every service has been scraped once. */
  window(): Window | undefined {
    const entries = SERVICE_NAMES.map((name) => {
      const scrapes = this.history.get(name)!;
      const first = scrapes[0];
      const last = scrapes.at(-1);
      return first && last ? ([name, { first, last }] as const) : undefined;
    });
    if (entries.some((entry) => entry === undefined)) return undefined;
    return Object.fromEntries(entries as Array<readonly [ServiceName, { first: Scrape; last: Scrape }]>) as Window;
  }

  async scrapeAll(): Promise<void> {
    await Promise.all(
      SERVICE_NAMES.map(async (name) => {
        const scrape = await this.scrape(name);
        const scrapes = this.history.get(name)!;
        scrapes.push(scrape);
        if (scrapes.length > WINDOW_SCRAPES + 1) scrapes.shift();
      }),
    );
  }

  private async scrape(name: ServiceName): Promise<Scrape> {
    try {
      const res = await request(`${this.urls[name]}/metrics`, {
        dispatcher: this.agent,
        headers: { accept: 'text/plain;version=0.0.4' },
        headersTimeout: SCRAPE_TIMEOUT_MS,
        bodyTimeout: SCRAPE_TIMEOUT_MS,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) return { at: Date.now(), error: `/metrics answered ${res.statusCode}` };
      return { at: Date.now(), samples: parseSamples(text) };
    } catch (err) {
      return { at: Date.now(), error: reason(err) };
    }
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    await this.agent.close();
  }
}
