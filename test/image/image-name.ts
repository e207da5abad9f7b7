import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../kit/processes';

/** This checkout's test image, as test/image/build-image.sh names it by default (one name, kept in the script). */
export function testImageName(): string {
  const result = spawnSync('bash', [join(REPO_ROOT, 'test', 'image', 'build-image.sh'), '--name'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`test/image/build-image.sh --name failed: ${result.stderr}`);
  return result.stdout.trim();
}
