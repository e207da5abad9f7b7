import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The package version, read from package.json beside dist/ (repo root locally, /app in the image). */
export const SERVICE_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();
