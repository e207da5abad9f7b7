/**
 * The local runner's NATS identities: the same users and permissions as the
 * chart (contracts/nats-rights.ts), without TLS (loopback only). Passwords
 * are made once and kept in .cache/nats-local/identities.json (readable by
 * its owner only), so a restarted runner, and the operator's own tools, keep
 * theirs; the server's config is written beside them at every start.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { NATS_IDENTITIES, NATS_OPERATOR, NATS_SERVICE_IDENTITIES, rightsOf, type NatsIdentity } from '../services/contracts/nats-rights';
import { natsAuthorizationBlock, natsUrlFor, newNatsPassword } from '../services/platform/nats-authorization';

const SERVER = '127.0.0.1:4222';
const passwordsSchema = z.record(z.string(), z.string().min(16));

export interface LocalNats {
  /** NATS_URL of a service, as its own identity; none for a service without NATS. */
  envOf(service: string): { NATS_URL?: string };
  /**
   * Writes the passwords (kept ones unchanged), the server's config and the
   * operator's URL, and returns nats-server's arguments. Only when the server
   * starts: a runner refused its configuration leaves nothing behind.
   */
  prepare(): { args: string[]; operatorUrlFile: string };
}

/** Kept passwords, with a new one for every identity that has none yet. */
function passwordsIn(file: string): Record<NatsIdentity, string> {
  const kept = existsSync(file) ? passwordsSchema.safeParse(JSON.parse(readFileSync(file, 'utf8'))) : undefined;
  return Object.fromEntries(NATS_IDENTITIES.map((identity) => [identity, kept?.data?.[identity] ?? newNatsPassword()])) as Record<NatsIdentity, string>;
}

export function localNats(dir: string): LocalNats {
  const passwordsFile = join(dir, 'identities.json');
  const passwords = passwordsIn(passwordsFile);
  const isIdentity = (name: string): name is NatsIdentity => (NATS_SERVICE_IDENTITIES as readonly string[]).includes(name);
  return {
    envOf: (service) => (isIdentity(service) ? { NATS_URL: natsUrlFor([SERVER], service, passwords[service]) } : {}),
    prepare() {
      mkdirSync(dir, { recursive: true });
      writeFileSync(passwordsFile, `${JSON.stringify(passwords, null, 2)}\n`, { mode: 0o600 });
      const config = join(dir, 'nats.conf');
      const users = NATS_IDENTITIES.map((user) => ({ user, password: passwords[user], rights: rightsOf(user) }));
      writeFileSync(
        config,
        [`listen: "${SERVER}"`, 'http: "127.0.0.1:8222"', `jetstream { store_dir: ${JSON.stringify(dir)} }`, natsAuthorizationBlock(users)].join('\n'),
        { mode: 0o600 },
      );
      const operatorUrlFile = join(dir, 'operator-url');
      writeFileSync(operatorUrlFile, `${natsUrlFor([SERVER], NATS_OPERATOR, passwords[NATS_OPERATOR])}\n`, { mode: 0o600 });
      return { args: ['--config', config], operatorUrlFile };
    },
  };
}
