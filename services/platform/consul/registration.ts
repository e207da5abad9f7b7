import type { Logger } from '../log';
import type { Metrics } from '../metrics';
import { hostForUrl, type ConsulClient, type ServiceRegistration } from './client';
import { repeatUntilStopped } from '../loop';

export interface InstanceDescription {
  name: string;
  /** The address others should call: the pod IP in Kubernetes, the host's address locally. */
  address: string;
  port: number;
  version: string;
}

/**
 * `<service>-<address>-<port>`: unique wherever two instances can run (several
 * on one laptop, one per pod IP in a cluster), and the same again when the same
 * instance registers a second time, so a re-registration replaces rather than
 * duplicates.
 */
export function instanceId({ name, address, port }: Pick<InstanceDescription, 'name' | 'address' | 'port'>): string {
  return `${name}-${address}-${port}`.replace(/[^A-Za-z0-9_.-]/g, '-');
}

/** Go duration syntax, which Consul parses; milliseconds keep every configured value exact. */
const goDuration = (ms: number) => `${ms}ms`;
/** Consul reaps a critical service no sooner than a minute after it turned critical. */
const DEREGISTER_CRITICAL_AFTER_MS = 60_000;
/**
 * Missed checks in a row that take an instance out of everyone's list: one
 * slow answer on a busy node is noise (Kubernetes' probes wait for three),
 * two in a row a pattern. A dead instance is still out within two intervals,
 * and callers' breakers pass over it sooner; a draining one deregisters first.
 */
const FAILURES_BEFORE_CRITICAL = 2;

/** The check's timing all follows its interval: one run may take two fifths of it. */
export function serviceRegistration(instance: InstanceDescription, checkIntervalMs: number): ServiceRegistration {
  const id = instanceId(instance);
  return {
    ID: id,
    Name: instance.name,
    Address: instance.address,
    Port: instance.port,
    Tags: [`version=${instance.version}`],
    Meta: { version: instance.version },
    // Liveness, not readiness: a draining instance leaves the catalogue by deregistering
    // first, and a peer outage must not take this instance out of everyone's list.
    // No Status: the check starts critical, so nobody calls an instance before the agent has reached it.
    Check: {
      CheckID: `service:${id}`,
      Name: `${instance.name} /healthz`,
      HTTP: `http://${hostForUrl(instance.address)}:${instance.port}/healthz`,
      Method: 'GET',
      Interval: goDuration(checkIntervalMs),
      Timeout: goDuration(Math.round((checkIntervalMs * 2) / 5)),
      FailuresBeforeCritical: FAILURES_BEFORE_CRITICAL,
      DeregisterCriticalServiceAfter: goDuration(DEREGISTER_CRITICAL_AFTER_MS),
    },
  };
}

/**
 * Keeps this instance registered with the local Consul agent: registers in
 * the background (start-up never waits for Consul), checks every resync
 * interval that the agent still knows it (an agent restarted without state
 * forgets), registers again when it does not, and deregisters on shutdown.
 */
export class Registration {
  private readonly definition: ServiceRegistration;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly options: {
      client: ConsulClient;
      log: Logger;
      metrics: Metrics;
      instance: InstanceDescription;
      checkIntervalMs: number;
      /** Every two check intervals unless set: an agent restarted without state has forgotten us about as long as its check takes to notice. */
      resyncIntervalMs?: number;
      /** Called before registering again after a loss or an outage: the agent may have restarted, index and all. */
      onRegistrationLost?: () => void;
    },
  ) {
    this.definition = serviceRegistration(options.instance, options.checkIntervalMs);
  }

  get id(): string {
    return this.definition.ID;
  }

  start(): void {
    this.loop ??= this.keepRegistered();
  }

  /** Stops the upkeep first, so no late registration can follow the deregistration. */
  async deregister(timeoutMs?: number): Promise<void> {
    this.stopping.abort();
    await this.loop;
    this.options.metrics.discoveryRegistered.set(0);
    await this.options.client.deregister(this.definition.ID, timeoutMs);
    this.options.log.info({ serviceId: this.definition.ID }, 'deregistered from consul');
  }

  private async keepRegistered(): Promise<void> {
    const { client, log, metrics } = this.options;
    const resyncIntervalMs = this.options.resyncIntervalMs ?? 2 * this.options.checkIntervalMs;
    const signal = this.stopping.signal;
    const serviceId = this.definition.ID;
    let registered = false;
    let everRegistered = false;
    let failing = false;
    await repeatUntilStopped(
      async () => {
        if (!registered || !(await client.hasService(serviceId, signal))) {
          if (registered) log.warn({ serviceId }, 'consul lost the registration: registering again');
          // Lost, or Consul was unreachable a while: the agent may have restarted, index and all.
          if (everRegistered) this.options.onRegistrationLost?.();
          await client.register(this.definition, signal);
          everRegistered = true;
          log.info({ serviceId, check: this.definition.Check.HTTP }, 'registered in consul');
        }
        registered = true;
        failing = false;
        metrics.discoveryRegistered.set(1);
        return resyncIntervalMs;
      },
      {
        signal,
        backoff: { initialMs: 250, maxMs: resyncIntervalMs },
        onError: (err, retryInMs) => {
          // Unknown state: the next success registers again (a PUT of the same definition is harmless).
          registered = false;
          metrics.discoveryRegistered.set(0);
          if (!failing) log.warn({ err, serviceId, retryInMs }, 'consul registration failed: retrying in the background');
          failing = true;
        },
      },
    );
  }
}
