import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import { z } from 'zod';
import type { Logger } from '../platform/log';
import { idSchema } from '../platform/validation';
import { BackendError, type Backends } from './backends';
import { edgesOf, nodesOf } from './graph';
import { pageHtml } from './page-html';
import type { FaultScenario } from './scenarios';
import { WINDOW_SCRAPES, SCRAPE_EVERY_MS, type Scraper } from './scraper';
import { switchService, switchesOf } from './switches';
import type { ConsoleState, SloView } from './view';

/** Prometheus is asked at most this often, however many pages poll. */
const SLO_EVERY_MS = 10_000;

export interface ConsoleDeps {
  scraper: Pick<Scraper, 'window'>;
  backends: Backends;
  log: Logger;
  /** The answer keys, or why there are none. */
  scenarios: { scenarios: FaultScenario[] } | { missing: string };
  readOnly: boolean;
  prometheusUrl: string | undefined;
  traceUrl: string | undefined;
}

const playParams = z.object({ assetId: idSchema, userId: idSchema });
const switchBody = z.object({ on: z.boolean() }).strict();

class BadRequest extends Error {
  override name = 'BadRequest';
}

function parsed<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new BadRequest(result.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; '));
  return result.data;
}

/** The page, its module, and the small JSON API the page polls: the console never listens itself (main.ts does). */
export function createConsoleApp(deps: ConsoleDeps): Express {
  const { scraper, backends, log } = deps;
  const script = readFileSync(join(__dirname, 'page', 'console.mjs'), 'utf8');
  const scenarios = 'scenarios' in deps.scenarios ? deps.scenarios.scenarios : [];
  let slo: { at: number; slos: SloView[] | null; error?: string } = { at: 0, slos: null };

  async function sloState(): Promise<ConsoleState['slo']> {
    if (!deps.prometheusUrl)
      return {
        source:
          'Prometheus is not configured (PROMETHEUS_URL): run scripts/observability.sh and start the console with PROMETHEUS_URL, or see docs/observability.md',
        slos: null,
      };
    if (Date.now() - slo.at > SLO_EVERY_MS) {
      slo = { at: Date.now(), slos: slo.slos };
      try {
        slo = { at: Date.now(), slos: await backends.slos() };
      } catch (err) {
        log.warn({ err }, 'Prometheus did not answer the SLO queries');
        slo = { at: Date.now(), slos: null, error: 'Prometheus did not answer' };
      }
    }
    return { source: slo.error ? `${deps.prometheusUrl}: ${slo.error}` : deps.prometheusUrl, slos: slo.slos };
  }

  const app = express();
  app.disable('x-powered-by');
  app.use(helmet());
  app.use(express.json({ limit: '1kb' }));

  const asJson =
    (handler: (req: express.Request) => Promise<unknown>): RequestHandler =>
    (req, res, next) => {
      handler(req).then((body) => res.json(body), next);
    };

  app.get('/', (_req, res) => {
    res.type('html').send(pageHtml({ readOnly: deps.readOnly, windowSeconds: (WINDOW_SCRAPES * SCRAPE_EVERY_MS) / 1000 }));
  });
  app.get('/console.mjs', (_req, res) => {
    res.type('text/javascript').send(script);
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get(
    '/api/state',
    asJson(async (): Promise<ConsoleState> => {
      const window = scraper.window();
      return {
        at: new Date().toISOString(),
        windowSeconds: (WINDOW_SCRAPES * SCRAPE_EVERY_MS) / 1000,
        nodes: window ? nodesOf(window) : [],
        edges: window ? edgesOf(window) : [],
        switches: deps.readOnly ? null : window ? switchesOf(window, scenarios) : [],
        slo: await sloState(),
        traceUrl: deps.traceUrl ?? null,
      };
    }),
  );
  app.get(
    '/api/assets',
    asJson((req) => backends.assets(req.query['after'] === undefined ? undefined : parsed(idSchema, req.query['after']))),
  );
  app.post(
    '/api/play/:assetId/:userId',
    asJson((req) => {
      const { assetId, userId } = parsed(playParams, req.params);
      return backends.play(assetId, userId);
    }),
  );
  app.get(
    '/api/counts/:assetId/:userId',
    asJson((req) => {
      const { assetId, userId } = parsed(playParams, req.params);
      return backends.counts(assetId, userId);
    }),
  );
  app.put(
    '/api/switches/:id',
    asJson(async (req) => {
      const service = switchService(String(req.params['id']));
      const window = scraper.window();
      const found = window && switchesOf(window, scenarios).find((s) => s.id === req.params['id']);
      if (deps.readOnly || !service || !found) return Promise.reject(new NotFound());
      const { on } = parsed(switchBody, req.body);
      await backends.setFaults(service, on ? found.settings : undefined);
      return { id: found.id, on };
    }),
  );

  app.use((_req, _res, next) => next(new NotFound()));
  const errors: ErrorRequestHandler = (err: unknown, _req, res, _next) => {
    if (err instanceof NotFound) res.status(404).json({ error: 'not_found', message: 'no such thing here (the switches need the faults token)' });
    else if (err instanceof BadRequest || err instanceof SyntaxError) res.status(400).json({ error: 'invalid_request', message: err.message });
    else if (err instanceof BackendError) {
      log.warn({ err }, 'a call for the page failed');
      res.status(502).json({ error: 'backend_failed', message: err.message });
    } else {
      log.error({ err }, 'console request failed');
      res.status(500).json({ error: 'internal', message: 'internal error (logged)' });
    }
  };
  app.use(errors);
  return app;
}

class NotFound extends Error {
  override name = 'NotFound';
}
