// tsc copies no SQL: put each service's migrations next to its compiled main.js.
import { cpSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

for (const service of readdirSync('services')) {
  const from = join('services', service, 'migrations');
  if (existsSync(from)) cpSync(from, join('dist', 'services', service, 'migrations'), { recursive: true });
}
