/**
 * Where the local mesh's PostgreSQL keeps its data: under the clone's .cache/,
 * so it goes with the clone, unless the user the server runs as (as root, the
 * `postgres` user) cannot enter the clone, as when it sits in a private folder
 * (/root, a `mktemp -d`). Then it lives in that user's home, in a folder named
 * after the clone and a hash of its path, so it is found again by the next
 * run and two clones never share one. The clone's folders stay as private as
 * their owner made them.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import { blockingFolder, blockingText, type ServerUser } from './local-postgres';

export interface MeshPostgresDir {
  dir: string;
  /** Why it is not under the clone, when it is not. */
  elsewhereBecause?: string;
}

/** The data directory for the clone at `root`, when the server runs as `user` (undefined: as us, who can reach the clone). */
export function meshPostgresDir(root: string, user: ServerUser | undefined): MeshPostgresDir {
  const cache = join(root, '.cache');
  const inClone = join(cache, 'postgres-local');
  if (!user) return { dir: inClone };
  mkdirSync(cache, { recursive: true });
  const blocked = blockingFolder(cache, user);
  if (!blocked) return { dir: inClone };
  const clone = realpathSync(root);
  const key = createHash('sha256').update(clone).digest('hex').slice(0, 12);
  return {
    dir: join(user.home, 'video-mesh', `${basename(clone)}-${key}`),
    elsewhereBecause: `the "${user.name}" user it runs as cannot enter ${blockingText(blocked)}`,
  };
}
