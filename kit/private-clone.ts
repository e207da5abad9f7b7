/**
 * A clone of this repository inside a private folder (mode 0700, like /root
 * or a `mktemp -d`), owned by a given user: what the runner needs to run
 * from there (dist/ and package.json copied, so the runner finds its root
 * and keeps its .cache/ there; node_modules linked, or hard-linked when that
 * user cannot reach ours), and a Node that user can run.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { canEnter } from '../scripts/local-postgres';
import { REPO_ROOT } from './processes';

export interface CloneOwner {
  uid: number;
  gid: number;
}

export interface PrivateClone {
  /** The private folder (0700), and the clone inside it. */
  folder: string;
  root: string;
  /** A node binary the owner can run. */
  node: string;
  remove(): void;
}

/** Gives `paths` (folders with all they hold) to `owner`; never node_modules, whose hard links are our own files. */
function chownTrees(paths: string[], owner: CloneOwner): void {
  const result = spawnSync('chown', ['-R', '--no-dereference', `${owner.uid}:${owner.gid}`, ...paths]);
  if (result.status !== 0) throw new Error(`chown -R ${paths.join(' ')} failed: ${result.stderr.toString()}`);
}

/** `owner`: the user to own it (a switch of user needs root); undefined: whoever we are. */
export function privateClone(owner?: CloneOwner): PrivateClone {
  const folder = mkdtempSync(join(tmpdir(), 'vm-private-'));
  const remove = () => rmSync(folder, { recursive: true, force: true });
  try {
    const root = join(folder, 'video-mesh');
    mkdirSync(root);
    cpSync(join(REPO_ROOT, 'dist'), join(root, 'dist'), { recursive: true });
    copyFileSync(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
    const modules = join(REPO_ROOT, 'node_modules');
    if (canEnter(modules, owner)) symlinkSync(modules, join(root, 'node_modules'));
    else {
      // Hard links cost no copy, and need the same filesystem: else a plain copy.
      const linked = spawnSync('cp', ['-al', modules, join(root, 'node_modules')]);
      if (linked.status !== 0) cpSync(modules, join(root, 'node_modules'), { recursive: true });
    }
    let node = process.execPath;
    if (!canEnter(dirname(node), owner)) {
      node = join(folder, 'node');
      copyFileSync(process.execPath, node);
    }
    if (owner) {
      chownTrees([join(root, 'dist'), join(root, 'package.json')], owner);
      for (const path of [folder, root, ...(node === process.execPath ? [] : [node])]) chownSync(path, owner.uid, owner.gid);
    }
    return { folder, root, node, remove };
  } catch (err) {
    remove();
    throw err;
  }
}
