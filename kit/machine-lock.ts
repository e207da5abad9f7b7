import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A lock every test process on this machine sees, for what only one of them
 * can hold at a time whatever suite it belongs to: the local runner's fixed
 * ports (8080-8084, 8090). Two copies of the suite on one machine (two clones,
 * or a soak) otherwise start two runners on the same ports and one fails.
 * A directory made with mkdir (atomic), holding its owner's pid; an owner that
 * is gone (killed mid-test) leaves it stale, and the next taker moves it aside
 * by rename, which only one taker can win.
 */
export async function holdMachineLock(name: string, { timeoutMs = 600_000 } = {}): Promise<() => void> {
  const dir = join(tmpdir(), `video-mesh-${name}.lock`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (ownerGone(dir)) {
      const aside = `${dir}.stale-${process.pid}`;
      try {
        renameSync(dir, aside);
        rmSync(aside, { recursive: true, force: true });
      } catch {
        // Another taker moved it first.
      }
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${dir} held by pid ${ownerOf(dir)} for over ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

const ownerOf = (dir: string): number | undefined => {
  try {
    return Number(readFileSync(join(dir, 'pid'), 'utf8')) || undefined;
  } catch {
    return undefined;
  }
};

/** The owner's process is gone; a lock whose pid is not written yet (just made) is not stale. */
function ownerGone(dir: string): boolean {
  const pid = ownerOf(dir);
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
