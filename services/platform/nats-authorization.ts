import { randomBytes } from 'node:crypto';

/** One user of a nats-server: its name, its password (or a reference the server resolves, `$VAR`), its rights. */
export interface NatsUser {
  user: string;
  password: string;
  rights: { publish: readonly string[]; subscribe: readonly string[] };
}

/** Subjects a user may use; none at all is a deny of everything (an empty allow list would allow all). */
const permission = (allow: readonly string[]) => (allow.length > 0 ? { allow } : { deny: ['>'] });

/**
 * The `authorization` block of a nats-server config: each user with only its
 * rights, one user a line. A password starting with `$` is written bare, so
 * the server reads it from its environment (the chart's way: the config holds
 * no secret); any other is quoted. Subjects are quoted JSON: `$JS.API...` must
 * not be taken for a variable.
 */
export function natsAuthorizationBlock(users: readonly NatsUser[]): string {
  const lines = users.map(({ user, password, rights }) => {
    const pass = /^\$[A-Z0-9_]+$/.test(password) ? password : JSON.stringify(password);
    const permissions = JSON.stringify({ publish: permission(rights.publish), subscribe: permission(rights.subscribe) });
    return `    {user: ${JSON.stringify(user)}, password: ${pass}, permissions: ${permissions}}`;
  });
  return ['authorization {', '  users: [', ...lines, '  ]', '}', ''].join('\n');
}

/**
 * The environment variable a server config names one user's password by
 * (`password: $NATS_PASSWORD_QUEUE_LISTENER`): the chart's servers, the
 * official chart's (k8s/addons/nats-values.yaml) and the test kit's clusters
 * fill it from a Secret, so the config itself holds no secret.
 */
export const natsPasswordVariable = (user: string) => `NATS_PASSWORD_${user.toUpperCase().replace(/-/g, '_')}`;

/**
 * A password for a generated identity: URL-safe, so it goes into NATS_URL's
 * userinfo as it is, and led by a letter. A server config that names it
 * (`password: $NATS_PASSWORD_PLAY`) parses the variable's value as a config
 * value: one led by digits can read as a number or a size (`77`, `12MB`,
 * `1e5x`), and the server refuses to start or keeps another password.
 */
export const newNatsPassword = () => `n${randomBytes(24).toString('base64url')}`;

/** `nats://user:password@host:port` (or `tls://`) for each server: NATS_URL for one identity. */
export function natsUrlFor(servers: readonly string[], user: string, password: string, scheme: 'nats' | 'tls' = 'nats'): string {
  return servers.map((s) => `${scheme}://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${s.replace(/^\w+:\/\//, '')}`).join(',');
}
