/**
 * The contract suite (scripts/contract-suite.ts) against running services:
 * the local mesh by default, or any base URLs, such as port-forwards or the
 * rehearsal's Services.
 *
 *   npm run contract
 *   npm run contract -- --play http://127.0.0.1:18080 --metadata http://127.0.0.1:18081 ...
 *
 * Exit codes: 0 every check held, 1 a check failed, 2 a usage error.
 */
import { SERVICES, type ServiceName } from '../services/contracts/services';
import { httpUrlFrom, readCommandLine, runCommand } from './args';
import { Verdicts } from './contract-kit';
import { runContract, type Targets, type Tokens } from './contract-suite';

/** Where the local mesh (./scripts/mesh) serves each service. */
const local = (service: ServiceName) => `http://127.0.0.1:${SERVICES[service].port}`;

export const USAGE = `usage: npm run contract -- [--play URL] [--metadata URL] [--cdnurl URL] [--reporting URL]

Runs the HTTP contract of docs/architecture.md against running services:
catalog records and writes, reporting's counts and idempotent records, play,
a view's way through NATS and the listener to reporting, and the health
routes. Prints each check and closes with "contract: N passed, N failed, N skipped".

options (each also read from the variable named, then the local mesh's port):
  --play URL        PLAY_URL       default ${local('play')}
  --metadata URL    METADATA_URL   default ${local('metadata')}
  --reporting URL   REPORTING_URL  default ${local('reporting')}
  --cdnurl URL      CDNURL_URL     default ${local('cdnurl')}
  -h, --help        this text

environment: ADMIN_TOKEN    the catalog's write token (unset: the catalog is taken to be open)
             RECORD_TOKEN   reporting's record token, where its record routes are closed`;

export interface Options {
  targets: Targets;
  tokens: Tokens;
}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): Options | undefined {
  const line = readCommandLine(
    argv,
    {
      play: { env: 'PLAY_URL', default: local('play') },
      metadata: { env: 'METADATA_URL', default: local('metadata') },
      reporting: { env: 'REPORTING_URL', default: local('reporting') },
      cdnurl: { env: 'CDNURL_URL', default: local('cdnurl') },
    },
    { env },
  );
  if (!line) return undefined;
  const { play, metadata, reporting, cdnurl } = line.flags;
  return {
    targets: { play: httpUrlFrom(play), metadata: httpUrlFrom(metadata), cdnurl: httpUrlFrom(cdnurl), reporting: httpUrlFrom(reporting) },
    // Tokens from the environment only: a command line is visible to every user of the machine.
    tokens: { admin: env['ADMIN_TOKEN'] || undefined, record: env['RECORD_TOKEN'] || undefined },
  };
}

export async function run(options: Options, print: (line: string) => void): Promise<number> {
  const verdicts = new Verdicts(print);
  await runContract(options.targets, options.tokens, verdicts);
  print(verdicts.summary('contract'));
  return verdicts.failed.length === 0 ? 0 : 1;
}

if (require.main === module) {
  runCommand({ name: 'contract', usage: USAGE, parse: parseArgs, run: (options) => run(options, (line) => process.stdout.write(`${line}\n`)) });
}
