import type { Express } from 'express';
import type { z } from 'zod';
import { ConfigError, loadConfig, type CommonConfig } from './config';
import { StaticDirectory, type PeerDirectory } from './discovery';
import { Readiness } from './health';
import { flushTelemetry } from './instrumentation';
import { createLogger, type Logger } from './log';
import { createMetrics, type Metrics } from './metrics';
import { startHttpServer } from './server';
import { shutDown, type ShutdownStep } from './shutdown';

export interface ServiceContext<C> {
  config: C;
  log: Logger;
  metrics: Metrics;
  readiness: Readiness;
  /** Where peers are; `staticUrls` are the fallbacks from configuration. */
  peerDirectory(staticUrls: Record<string, string>): PeerDirectory;
}

export interface StartedService {
  app: Express;
  /** Run after the HTTP server has stopped, in order (drain NATS, close pools). */
  stop?: ShutdownStep[];
}

export interface ServiceDefinition<S extends z.ZodTypeAny> {
  name: string;
  configSchema: S;
  start(context: ServiceContext<z.output<S> & CommonConfig & { PORT: number }>): Promise<StartedService>;
}

/**
 * The start-up and shutdown every service shares: config, logger, metrics,
 * HTTP server, then SIGTERM handling in the order Kubernetes expects.
 * The only place that calls process.exit.
 */
export async function runService<S extends z.ZodTypeAny>(definition: ServiceDefinition<S>): Promise<void> {
  let config: z.output<S> & CommonConfig & { PORT: number };
  try {
    config = loadConfig(definition.configSchema);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${definition.name}: ${err.message}\n`);
    process.exit(1);
  }
  const log = createLogger(definition.name, config.LOG_LEVEL);
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));

  const metrics = createMetrics(definition.name);
  const readiness = new Readiness();
  const directories: PeerDirectory[] = [];
  const started = await definition.start({
    config,
    log,
    metrics,
    readiness,
    peerDirectory(staticUrls) {
      const directory = new StaticDirectory(staticUrls, metrics);
      directories.push(directory);
      return directory;
    },
  });

  const http = await startHttpServer(started.app, config.PORT, config.HOST);
  log.info({ port: http.port }, `${definition.name} listening`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const finished = await shutDown({
      log,
      readiness,
      first: [],
      drainDelayMs: config.SHUTDOWN_DRAIN_DELAY_MS,
      then: [
        { name: 'http', run: () => http.close(Math.max(config.SHUTDOWN_TIMEOUT_MS - config.SHUTDOWN_DRAIN_DELAY_MS - 500, 100)) },
        ...(started.stop ?? []),
        ...directories.map((d) => ({ name: 'discovery', run: () => d.close() })),
        { name: 'telemetry', run: flushTelemetry },
      ],
      timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    });
    process.exit(finished ? 0 : 1);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
