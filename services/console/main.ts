import { SERVICE_NAMES } from '../contracts/services';
import { ConfigError, CONFIG_EXIT_CODE, loadConfig } from '../platform/config';
import { createLogger } from '../platform/log';
import { startHttpServer } from '../platform/server';
import { createConsoleApp } from './app';
import { Backends } from './backends';
import { consoleConfigSchema, serviceUrlsOf } from './config';
import { DEFAULT_SCENARIOS_FILE, loadFaultScenarios } from './scenarios';
import { Scraper } from './scraper';

/** What a request in flight is given to finish at shutdown. */
const CLOSE_DEADLINE_MS = 5_000;

/**
 * The console: not one of the five services (it is not in the registry and
 * no service knows it), a page beside the mesh that reads the services'
 * /metrics and, with the faults token, flips their fault toggles.
 */
async function main(): Promise<void> {
  const log = createLogger('console');
  let config;
  try {
    config = loadConfig(consoleConfigSchema);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    log.fatal(err.message);
    process.exit(CONFIG_EXIT_CODE);
  }
  const urls = serviceUrlsOf(config);
  const scraper = new Scraper(urls, log);
  const backends = new Backends(urls, { faultsToken: config.FAULTS_TOKEN, prometheusUrl: config.PROMETHEUS_URL });
  const scenarios = await loadFaultScenarios(config.SCENARIOS_FILE ?? DEFAULT_SCENARIOS_FILE);
  if ('missing' in scenarios) log.info({ why: scenarios.missing }, 'no answer keys: the switches show without them');
  const app = createConsoleApp({
    scraper,
    backends,
    log,
    scenarios,
    readOnly: !config.FAULTS_TOKEN,
    prometheusUrl: config.PROMETHEUS_URL,
    traceUrl: config.TRACE_URL,
  });
  scraper.start();
  const server = await startHttpServer(app, config.PORT, config.HOST);
  log.info({ port: server.port, services: Object.fromEntries(SERVICE_NAMES.map((n) => [n, urls[n]])), readOnly: !config.FAULTS_TOKEN }, 'console listening');
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = true;
      void (async () => {
        await server.close(CLOSE_DEADLINE_MS);
        await scraper.stop();
        await backends.close();
        process.exit(0);
      })();
    });
  }
}

void main().catch((err: unknown) => {
  createLogger('console').fatal({ err }, 'console failed to start');
  process.exit(1);
});
