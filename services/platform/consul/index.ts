import { networkInterfaces } from 'node:os';
import type { CommonConfig } from '../config';
import type { PeerDirectory } from '../discovery';
import type { Logger } from '../log';
import type { Metrics } from '../metrics';
import { SERVICE_VERSION } from '../version';
import { createConsulClient } from './client';
import { ConsulDirectory } from './directory';
import { Registration } from './registration';

export { ConsulError, consulOrigin, createConsulClient, type ConsulClient } from './client';
export { ConsulDirectory } from './directory';
export { Registration, instanceId, serviceRegistration } from './registration';

/** What run-service needs from Consul: a directory per caller, one registration, one pool to close. */
export interface ConsulLink {
  directory(staticUrls: Record<string, string>): PeerDirectory;
  /** Registers in the background once the port is known; never waits for Consul. */
  register(port: number): Registration;
  close(): Promise<void>;
}

export function connectConsul(address: string, config: CommonConfig, service: string, log: Logger, metrics: Metrics): ConsulLink {
  const client = createConsulClient({ address, token: config.CONSUL_HTTP_TOKEN, metrics });
  const consulLog = log.child({ component: 'consul' });
  const directories: ConsulDirectory[] = [];
  return {
    directory(staticUrls) {
      const directory = new ConsulDirectory({ client, staticUrls, metrics, log: consulLog });
      directories.push(directory);
      return directory;
    },
    register(port) {
      const registration = new Registration({
        client,
        log: consulLog,
        metrics,
        instance: { name: service, address: config.SERVICE_ADDRESS ?? firstIPv4(), port, version: SERVICE_VERSION },
        checkIntervalMs: config.CONSUL_CHECK_INTERVAL_MS,
        onRegistrationLost: () => directories.forEach((d) => d.restartWatches()),
      });
      registration.start();
      return registration;
    },
    close: () => client.close(),
  };
}

/** What others call this instance at without SERVICE_ADDRESS: the host's first non-internal IPv4. */
function firstIPv4(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    const ipv4 = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (ipv4) return ipv4.address;
  }
  return '127.0.0.1';
}
