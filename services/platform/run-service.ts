import type { Express } from 'express';
import type { z } from 'zod';
import { CONFIG_EXIT_CODE, ConfigError, loadConfig, type CommonConfig, type ConfigRule, type serviceConfigSchema } from './config';
import { connectConsul } from './consul';
import { StaticDirectory, type PeerDirectory } from './discovery';
import { Faults, faultsAuth } from './faults';
import type { FaultKind, FaultSettings } from './faults-config';
import { probeListener, Readiness } from './health';
import type { AppParts } from './http';
import { flushTelemetry } from './instrumentation';
import { createLogger } from './log';
import { createMetrics } from './metrics';
import { startHttpServer } from './server';
import { shutDown, type ShutdownStep } from './shutdown';

type ServiceConfigSchema = ReturnType<typeof serviceConfigSchema>;

interface ServiceContext<C> {
  config: C;
  /** For the service's app; the fault toggles exist only with FAULTS_ENABLED=true, and the service's own kinds read them. */
  parts: AppParts;
  /** Where peers are; `staticUrls` are the fallbacks from configuration. */
  peerDirectory: (staticUrls: Record<string, string>) => PeerDirectory;
}

interface StartedService {
  app: Express;
  /** Run after the HTTP server has stopped, in order (drain NATS, close pools). */
  stop?: ShutdownStep[];
}

export interface ServiceDefinition<S extends ServiceConfigSchema> {
  name: string;
  /** From serviceConfigSchema, with the same fault kinds as `faultKinds`. */
  configSchema: S;
  /** From serviceConfigRules: checked at start, after each variable is valid on its own. */
  configRules: ReadonlyArray<ConfigRule<z.output<S>>>;
  /** Fault kinds of this service besides delay and errors. */
  faultKinds?: readonly FaultKind[];
  start(context: ServiceContext<z.output<S> & CommonConfig & { PORT: number; FAULTS?: FaultSettings | undefined }>): StartedService | Promise<StartedService>;
}

/**
 * The start-up and shutdown every service shares: config, logger, metrics,
 * HTTP server, then SIGTERM handling in the order Kubernetes expects.
 * The only place that calls process.exit.
 */
export async function runService<S extends ServiceConfigSchema>(definition: ServiceDefinition<S>): Promise<void> {
  let config: z.output<S> & CommonConfig & { PORT: number; FAULTS?: FaultSettings | undefined };
  try {
    // The schema holds the common variables and PORT (serviceConfigSchema), which the compiler cannot see through S.
    config = loadConfig(definition.configSchema, process.env, definition.configRules) as typeof config;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${definition.name}: ${err.message}\n`);
    // Not 1: a supervisor must tell "this environment is wrong" from a crash, and not restart it.
    process.exit(CONFIG_EXIT_CODE);
  }
  const log = createLogger(definition.name, config.LOG_LEVEL);
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));

  const metrics = createMetrics(definition.name);
  const readiness = new Readiness();
  // Development machinery: absent from a process that did not ask for it (the rules require FAULTS_TOKEN with it).
  const faults =
    config.FAULTS_ENABLED && config.FAULTS_TOKEN
      ? new Faults({ metrics, log, kinds: definition.faultKinds ?? [], initial: config.FAULTS, auth: faultsAuth(config.FAULTS_TOKEN) })
      : undefined;
  const directories: PeerDirectory[] = [];
  // Without CONSUL_HTTP_ADDR everything runs on static URLs, as locally by default.
  const consul = config.CONSUL_HTTP_ADDR ? connectConsul(config.CONSUL_HTTP_ADDR, config, definition.name, log, metrics) : undefined;
  // A service that cannot start (its port taken, a broken migration) must exit,
  // not linger unready with its connections open: the runner or Kubernetes
  // restarts it, and the exit code and last log line say why.
  const fail =
    (what: string) =>
    (err: unknown): never => {
      log.fatal({ err }, `${definition.name} ${what}; exiting`);
      process.exit(1);
    };
  const started = await Promise.resolve()
    .then(() =>
      definition.start({
        config,
        parts: { log, metrics, readiness, faults },
        peerDirectory(staticUrls) {
          const directory = consul ? consul.directory(staticUrls) : new StaticDirectory(staticUrls, metrics);
          directories.push(directory);
          return directory;
        },
      }),
    )
    .catch(fail('could not start'));

  const http = await startHttpServer(started.app, config.PORT, config.HOST).catch(fail(`could not listen on ${config.HOST}:${config.PORT}`));
  log.info({ port: http.port }, `${definition.name} listening`);
  // The kubelet's probes on a listener of their own, so a flood of clients on PORT cannot starve them.
  const probes =
    config.PROBE_PORT === undefined
      ? undefined
      : await startHttpServer(probeListener(readiness), config.PROBE_PORT, config.HOST).catch(
          fail(`could not listen on ${config.HOST}:${config.PROBE_PORT} (PROBE_PORT)`),
        );
  if (probes) log.info({ port: probes.port }, 'probes listening');
  // After listening: the check must find /healthz, and the registered port is the real one.
  const registration = consul?.register(http.port);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const finished = await shutDown({
      log,
      readiness,
      // Leave the catalogue while still serving: callers' blocking queries see it at once.
      first: registration ? [{ name: 'consul-deregister', run: () => registration.deregister(Math.min(3_000, config.SHUTDOWN_TIMEOUT_MS / 4)) }] : [],
      drainDelayMs: config.SHUTDOWN_DRAIN_DELAY_MS,
      then: [
        { name: 'http', run: () => http.close(Math.max(config.SHUTDOWN_TIMEOUT_MS - config.SHUTDOWN_DRAIN_DELAY_MS - 500, 100)) },
        ...(started.stop ?? []),
        ...directories.map((d) => ({ name: 'discovery', run: () => d.close() })),
        ...(consul ? [{ name: 'consul', run: () => consul.close() }] : []),
        { name: 'telemetry', run: flushTelemetry },
        // Last: readiness says "draining" and liveness "ok" to the kubelet until the very end.
        ...(probes ? [{ name: 'probes', run: () => probes.close(1_000) }] : []),
      ],
      timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    });
    process.exit(finished ? 0 : 1);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
